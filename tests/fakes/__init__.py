"""Fake servers and fixtures that attack the ingest code (see hostile.py)."""
