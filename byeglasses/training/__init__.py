"""Training: the loop (train()), training checkpoints (resume state), multi-GPU helpers."""
