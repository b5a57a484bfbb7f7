"""Reconciliation: matching money received to open invoices, and the review queues."""
