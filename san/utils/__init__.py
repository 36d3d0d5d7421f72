"""Small shared helpers: atomic file writes, device choice, progress logging, checkpoints."""
