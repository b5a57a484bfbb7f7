"""Debtors' privacy: erasure of one customer's personal data everywhere it lives, and retention."""
