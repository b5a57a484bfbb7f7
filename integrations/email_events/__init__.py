"""Inbound e-mail events (bounces, complaints, deliveries): the signed webhook."""
