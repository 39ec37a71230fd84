"""Adapters of the console: DuckDB projection, JetStream feed, sessions, HTTP pages."""
