"""The shape every pretrained embedding model takes here, so that models sit side by side (musicnn first)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class EmbeddingModel:
    """One loaded pretrained model, as trial code uses it.

    Attributes:
        name: the model's name (e.g. ``MSD_musicnn``).
        sample_rate: the rate its input is computed at, Hz (``embed`` resamples other rates to it).
        patch_seconds: its default patch length, s (what it was trained on).
        layers: ``layer -> dims``: what ``embed`` can read and the length of each row at ``patch_seconds``.
        embed: ``(waveform (samples,) float, sample_rate Hz, layer, patch_seconds=..., hop_seconds=None)
            -> (patches, dims) float32``: one row per patch (``hop_seconds`` None: patches do not overlap).
    """

    name: str
    sample_rate: int
    patch_seconds: float
    layers: Mapping[str, int]
    embed: Callable[..., np.ndarray]
