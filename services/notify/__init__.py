"""Notify service: routes safety signals to people by email, with an outbox and audit trail."""
