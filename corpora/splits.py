"""The common return type of every corpus and the seeded random split."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch


class Rows:
    """Rows ``index`` of a 2-D array (typically a memory-mapped decoded-audio cache, float16),
    read on demand: ``rows[i]`` gives ``(len(i), n_samples)`` float32 tensors.

    Holds no audio itself, so a corpus larger than memory is shared between trials through the
    page cache instead of being copied into every trial process.
    """

    def __init__(self, array: np.ndarray, index):
        self.array, self.index = array, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.index), int(self.array.shape[1]))

    def __getitem__(self, i) -> torch.Tensor:
        rows = self.index[np.asarray(i, dtype=np.int64)]
        return torch.from_numpy(np.asarray(self.array[rows], dtype=np.float32))

    def segments(self, clips: np.ndarray, offsets: np.ndarray, length: int, pin: bool = False) -> torch.Tensor:
        """``(len(clips), length)`` float32: ``length`` samples of each clip from its offset.

        ``pin=True`` returns page-locked memory, which a ``non_blocking`` copy to a GPU needs to
        overlap with the computation."""
        out = torch.empty((len(clips), length), dtype=torch.float32, pin_memory=pin)
        view = out.numpy()
        for k, (c, o) in enumerate(zip(self.index[clips], offsets)):
            view[k] = self.array[c, o:o + length]
        return out


@dataclass
class Splits:
    """Train/valid/test tensors of one corpus.

    ``x_*``: ``(n, n_points)`` float32 waveforms (a tensor, or :class:`Rows` of a cache); ``y_*``: ``(n,)`` int64 labels.
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

    def waveforms_to(self, device: torch.device) -> "Splits":
        """A copy whose in-memory waveforms (``x_*`` tensors: synthetic, FSDD) live on ``device``, so
        batches are sliced there instead of being copied every step. :class:`Rows` of a decoded-audio
        cache stay on the host (memory-mapped); labels stay on the host (metrics read them)."""
        moved = {name: getattr(self, name).to(device) if isinstance(getattr(self, name), torch.Tensor)
                 else getattr(self, name) for name in ("x_train", "x_valid", "x_test")}
        return dataclasses.replace(self, **moved)

    def train_subset(self, index: np.ndarray) -> "Splits":
        """A copy whose train split holds only the examples ``index`` (positions in ``x_train``);
        valid and test are unchanged. ``info["n_train_subset"]`` counts what was kept."""
        index = np.asarray(index, dtype=np.int64)
        x = self.x_train
        kept = Rows(x.array, x.index[index]) if isinstance(x, Rows) else x[torch.from_numpy(index).to(x.device)]
        ids = [self.ids_train[i] for i in index] if self.ids_train else []
        return dataclasses.replace(self, x_train=kept, y_train=self.y_train[torch.from_numpy(index)], ids_train=ids,
                                   info={**self.info, "train_subset": len(index)})


def split_seed(config: dict) -> int:
    """The seed of ``config``'s data split: ``split_seed`` when set (one split for every repetition, as the
    DMEL code's generator seeded 0), else the trial's ``seed`` (a new split per repetition)."""
    return int(config["seed"] if config.get("split_seed") is None else config["split_seed"])


def random_split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Seeded permutation of ``range(n)`` cut into train/valid/test by ``fractions``."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_valid = int(round(fractions[1] * n))
    return perm[:n_train], perm[n_train:n_train + n_valid], perm[n_train + n_valid:]


def per_class_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Positions of ``per_class`` examples of every class of ``labels`` (all of a smaller class), drawn
    with ``seed``, in ascending order.

    Each class's examples are permuted once by ``seed`` and the first ``per_class`` kept, so for one seed
    the subsets are nested: the 2-per-class subset holds the 1-per-class one, and so on up the curve.
    """
    if per_class < 1:
        raise ValueError(f"train_per_class must be at least 1, got {per_class}")
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 0x5eed])
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))
