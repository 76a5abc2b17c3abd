"""Pretrained audio embedding models ported to PyTorch (musicnn: :mod:`embeddings.musicnn`)."""
