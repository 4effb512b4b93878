"""What runs leave behind: per-seed records (their schema), run directories, checkpoints, locks."""
