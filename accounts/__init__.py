"""Customers, invoices, payments and the account timeline."""
