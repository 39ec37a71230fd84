"""Unit tests of the rules service core (pure; no I/O)."""
