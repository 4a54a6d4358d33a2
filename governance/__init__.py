"""Governance: the hash-chained audit trail, replayable context-pack records, explanations, expert
feedback and tuning, redaction.

Imports only ``core``; used by ``retrieval`` and ``api`` (ARCHITECTURE.md)."""
