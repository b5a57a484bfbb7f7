"""Twilio: SMS delivery status and inbound replies, with STOP and START handled."""
