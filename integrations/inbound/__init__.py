"""Inbound e-mail: pure functions that classify a debtor's reply.

Automatic or human, threading, visible text, a promised payment, dispute words.
"""
