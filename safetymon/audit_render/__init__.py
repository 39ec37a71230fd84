"""How the `safetymon audit` commands show their answers to people (rich tables).

Presentation only: the JSON documents are the audit service's (`services.audit.adapters.documents`).
"""
