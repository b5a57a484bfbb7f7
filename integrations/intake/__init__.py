"""Intake: every source's rows into the ledger through one pipeline, with a dead-letter list."""
