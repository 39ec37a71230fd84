"""The audit: bundles exported through the owning services, checked and replayed offline.

Export a tamper-evident bundle, verify it, replay it as of a time, reconcile it with notify's
trail, backtest a rule, serve it over HTTP. `core/` is pure (chain verification, the replay's
fold, comparisons, reconcile); `app.py` the queries; `adapters/` the bundle files, exports,
replayer, checkpoints and `audit serve`; `main.py` the composition root. The CLI is
`safetymon/audit_cli.py`.
"""
