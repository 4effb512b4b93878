"""Stage 3: evaluation of policies in environments."""
