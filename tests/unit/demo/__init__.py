"""Tests of the demo feed generator."""
