"""What the audit may rely on of the notify service; changing it is a contract change.

Reconcile judges notify by notify's own rules: the routing file's parser and the pure
planner that decides which notifications a signal needs (with their deterministic ids), and
the placeholder participant of a DSMB report announcement (`model`, held to the pure-core
contract). The export reads notify's audit trail and outbox through its snapshot subject
(online) or its COPY statements (offline), and an offline bundle copies the sent journal as
notify's own reader reads it (`snapshot`).
"""
