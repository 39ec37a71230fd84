"""Shared adapter kit: JetStream plumbing, a DuckDB writer thread, logging. No domain logic.

Services may import the kit from their adapters and main; the kit imports no service.
"""
