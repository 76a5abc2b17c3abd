"""Synthetic Gaussian-pulse time-frequency data (DMEL paper, section 4.1 / Table 4).

Three classes of ``n_points``-sample signals built from Gaussian-windowed sinusoids of
time spread ``sigma_ref`` samples:

* class 0: one pulse, spread in time (sigma scaled by U[1, s_max]) or in frequency
  (sigma scaled by U[1/s_max, 1]), s_max = 2 t_max / (6 sigma_ref) + 1;
* class 1: two pulses at the same frequency, ``t_center +- dt`` with dt ~ U[sigma_ref, t_max];
* class 2: two pulses at the same time, ``f_center +- df`` with df ~ U[sigma_ref / (2 N), f_max].

t_max = N / 5 samples, f_max = 0.1 cycles/sample, centre (N/2, 0.25) plus optional uniform
offsets. Each pulse has a uniform random phase and its mean removed. Variability: amplitude
U[0.5, 1], additive noise. The paper's code uses ``noise_std * U[0, 1)`` (positive uniform
noise, mean removed afterwards); that is the default ``noise_kind="uniform"``,
``"gaussian"`` gives ``noise_std * N(0, 1)``. ``demo=True`` removes the variability
(offsets fixed at 0.4 of their maxima, no spread, amplitude 1) for figure 1.
All randomness comes from one ``numpy`` generator seeded by ``seed``; generation is vectorised.
"""
from __future__ import annotations

import numpy as np
import torch

from corpora.registry import Corpus, register_corpus
from corpora.splits import Splits, random_split_indices, split_seed

CLASS_NAMES = ["one pulse", "two in time", "two in frequency"]
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
NOISE_KINDS = ("uniform", "gaussian")  # config["noise_kind"]: the paper code's noise_std * U[0,1), or Gaussian


def _pulses(t_loc, f_loc, sigma, phase, n_points):
    """``(n, N)`` Gaussian pulses: ``exp(-0.5 ((t - t_loc)/sigma)^2) sin(2 pi f_loc t + phase)``, mean removed."""
    t = np.arange(n_points)[None, :]
    col = lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1)  # noqa: E731
    env = np.exp(-0.5 * ((t - col(t_loc)) / col(sigma)) ** 2)
    p = env * np.sin(2 * np.pi * col(f_loc) * t + col(phase))
    return p - p.mean(axis=1, keepdims=True)


def generate(n_samples: int, sigma_ref: float = 6.38, n_points: int = 128, noise_std: float = 0.5,
             noise_kind: str = "uniform", t_center_max_offset: float = 0.0, f_center_max_offset: float = 0.0,
             demo: bool = False, seed: int = 0, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_samples`` signals.

    Returns:
        ``x``: ``(n_samples, n_points)`` float32, each row zero-mean; ``y``: ``(n_samples,)`` int64.
        ``labels`` fixes the classes (used by the figure); otherwise they are uniform in {0, 1, 2}.
    """
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise_kind {noise_kind!r}; choose one of {NOISE_KINDS} (uniform: the paper code's)")
    rng = np.random.default_rng(seed)
    n = n_samples
    t_max, f_max = n_points / 5, 0.5 / 5
    t_min, f_min = sigma_ref, 0.5 * sigma_ref / n_points
    s_max = 2 * t_max / (6 * sigma_ref) + 1

    y = rng.integers(0, 3, n) if labels is None else np.asarray(labels, dtype=np.int64)
    uni = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    t_c = n_points / 2 + (0 if demo else uni(-t_center_max_offset, t_center_max_offset))
    f_c = 0.25 + (0 if demo else uni(-f_center_max_offset, f_center_max_offset))
    dt = np.full(n, 0.4 * t_max) if demo else uni(t_min, t_max)
    df = np.full(n, 0.4 * f_max) if demo else uni(f_min, f_max)
    spread_in_time = rng.random(n) < 0.5
    scale = np.where(spread_in_time, uni(1.0, s_max), uni(1 / s_max, 1.0))
    if demo:
        scale = np.ones(n)
    phase1, phase2 = rng.uniform(0, 2 * np.pi, (2, n))

    t_c, f_c = np.broadcast_to(t_c, (n,)), np.broadcast_to(f_c, (n,))
    one = _pulses(t_c, f_c, sigma_ref * scale, phase1, n_points)
    in_time = (_pulses(t_c - dt, f_c, sigma_ref, phase1, n_points)
               + _pulses(t_c + dt, f_c, sigma_ref, phase2, n_points))
    in_freq = (_pulses(t_c, f_c - df, sigma_ref, phase1, n_points)
               + _pulses(t_c, f_c + df, sigma_ref, phase2, n_points))
    x = np.choose(y[:, None], [one, in_time, in_freq])

    amplitude = np.ones((n, 1)) if demo else uni(0.5, 1.0)[:, None]
    noise = rng.random((n, n_points)) if noise_kind == "uniform" else rng.standard_normal((n, n_points))
    x = x * amplitude + noise_std * noise
    x -= x.mean(axis=1, keepdims=True)
    return x.astype(np.float32), y.astype(np.int64)


def load_splits(config: dict) -> Splits:
    """70/10/20 split of ``config["n_samples"]`` signals generated from ``config["seed"]`` (fresh signals for each
    repetition, as the DMEL code draws them afresh for each run), the split permutation from ``split_seed``
    (:func:`corpora.splits.split_seed`: the DMEL code's fixed generator seed 0 in the ``time_frequency`` grid)."""
    x, y = generate(config["n_samples"], sigma_ref=config["sigma_ref"], n_points=config["n_points"],
                    noise_std=config["noise_std"], noise_kind=config["noise_kind"],
                    t_center_max_offset=config["t_center_max_offset"],
                    f_center_max_offset=config["f_center_max_offset"], seed=config["seed"])
    idx = random_split_indices(len(y), SPLIT_FRACTIONS, split_seed(config))
    xs = [torch.from_numpy(x[i]) for i in idx]
    ys = [torch.from_numpy(y[i]) for i in idx]
    ids = [[str(j) for j in i] for i in idx]
    return Splits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], n_classes=3, sample_rate=None,
                  class_names=CLASS_NAMES, ids_train=ids[0], ids_valid=ids[1], ids_test=ids[2])


register_corpus(Corpus(
    "time_frequency", load_splits, "synthetic Gaussian pulses, 3 classes (DMEL paper, Table 4); generated, no download",
    reads_disk=False, has_sample_rate=False))
