"""What the audit may rely on of the rules service; changing it is a contract change.

The audit's replay folds the log with the very step the live service runs, so it needs the
rules' pure fold, the trial configuration (its type and its parser), the participant state
and the rules a configuration runs (`model`); its export writes and requests the rules'
snapshot files with the same COPY statements and subject the running service uses
(`snapshot`). Two halves so that the audit's pure core can import the model without the
DuckDB side: `model` is held to the pure-core contract in pyproject.toml. Everything else in
`services.rules` may change without the audit noticing; a change here must keep
`tests/unit/audit` and the golden replay green, or be made together with the audit.
"""
