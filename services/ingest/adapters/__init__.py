"""Adapters of the ingest service: DuckDB log, NATS relay, HTTP API."""
