"""The common return type of every corpus and the seeded random split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Splits:
    """Train/valid/test tensors of one corpus.

    ``x_*``: ``(n, n_points)`` float32 waveforms; ``y_*``: ``(n,)`` int64 labels.
    ``ids_*``: an identifier per example (file stem or index) recorded with the trial.
    ``sample_rate`` in Hz, ``None`` for the synthetic data (lambda has no time unit there).
    ``info``: counts worth reporting (skipped files, ...).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    sample_rate: int | None
    class_names: list[str]
    ids_train: list[str] = field(default_factory=list)
    ids_valid: list[str] = field(default_factory=list)
    ids_test: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(self.x_train.shape[-1])


def random_split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Seeded permutation of ``range(n)`` cut into train/valid/test by ``fractions``."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_valid = int(round(fractions[1] * n))
    return perm[:n_train], perm[n_train:n_train + n_valid], perm[n_train + n_valid:]
