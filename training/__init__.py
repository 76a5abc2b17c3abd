"""Trial configuration, the training loop and the Ray Tune trial function."""
