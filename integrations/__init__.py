"""Intake, API, payment gateways, bank files and messaging providers."""
