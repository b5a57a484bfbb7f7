"""Dunning policies, notices and the nightly run."""
