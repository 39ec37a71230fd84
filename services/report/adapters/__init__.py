"""Adapters of the report service: DuckDB queries, file writers, HTML, snapshot and NATS."""
