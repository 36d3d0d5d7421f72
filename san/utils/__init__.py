"""Small shared helpers: atomic file writes, device choice, progress logging, checkpoints, training-loop
mechanics (:mod:`san.utils.training`)."""
