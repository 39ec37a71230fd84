"""Ingest service: validate, normalise, dedupe, append to the hash-chained log, publish."""
