"""Adapters of the notify service: DuckDB, SMTP, Jinja, JetStream, in-memory fakes."""
