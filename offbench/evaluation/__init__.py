"""Evaluation of policies in environments (host and MJX backends)."""
