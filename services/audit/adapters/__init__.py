"""The audit's edges: bundle files (Parquet, DuckDB), NATS and HTTP snapshots, `audit serve`."""
