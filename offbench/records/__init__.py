"""Stage 4: what runs leave behind. Per-seed records and checkpoints."""
