"""Auditors' tools: export a tamper-evident bundle through the owning services, verify it offline.

`verify` is the pure chain check; `reader` reads a bundle from disk; `export` and `offline`
assemble one from the running services or from their stopped DuckDB files; `compare` checks
a replay against the live signals; `cli` is the `safetymon audit` command.
"""
