"""Adapters of the rules service: DuckDB store, in-memory store, NATS edge, outbox relay."""
