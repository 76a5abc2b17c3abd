"""Dataset loaders and generators. Every corpus exposes ``load_splits(config) -> Splits``."""
from __future__ import annotations

import importlib

from corpora.splits import Splits

# dataset_name -> module holding load_splits(config)
CORPORA = {"time_frequency": "corpora.synthetic", "audio_mnist": "corpora.fsdd"}
# corpora read from disk -> how to get them
DOWNLOAD_HINTS = {"audio_mnist": "download it with `sh download_data.sh` (FSDD into data/audio-mnist)"}


def load_splits(config: dict) -> Splits:
    """Train/valid/test data for ``config["dataset_name"]``."""
    name = config["dataset_name"]
    if name not in CORPORA:
        raise ValueError(f"unknown dataset_name {name!r}; choose one of {sorted(CORPORA)}")
    return importlib.import_module(CORPORA[name]).load_splits(config)
