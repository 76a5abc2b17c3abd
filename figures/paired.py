"""Paired statistics of two aligned samples (DMEL trainable vs fixed runs that share a seed).

:func:`paired_difference` is pure: two aligned arrays in, the mean difference, its percentile-bootstrap
95 % confidence interval, a two-sided Wilcoxon signed-rank p-value and the number of pairs out.
:func:`difference_cell` and :func:`wilcoxon_cell` format them for a table.

Choices (docs/figures.md says the same):

- the differences ``a - b`` are rounded to ``DECIMALS`` decimals first, so that equal gaps computed in
  floating point (``0.7 - 0.5`` and ``0.5 - 0.3``) tie and an exact zero is a zero;
- bootstrap: ``BOOTSTRAP_RESAMPLES`` resamples of the pairs, drawn as
  ``numpy.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))`` (a fresh
  generator per call, so a table is reproducible), the interval the 2.5th and 97.5th percentiles
  (``numpy.percentile``, linear interpolation) of the resampled means;
- Wilcoxon (``scipy.stats.wilcoxon``, two-sided, ``zero_method="wilcox"``): a zero difference carries
  no sign and is dropped before ranking (``n`` still counts its pair); tied absolute differences get their
  average rank. Of the ``m`` non-zero differences: without ties and ``m <= EXACT_MAX_N_NO_TIES``, the exact
  null distribution (``method="exact"``); with ties and ``m <= EXACT_MAX_N_TIES``, the exact distribution
  over all ``2**m`` sign assignments (``scipy.stats.PermutationMethod(n_resamples=2**m)``); otherwise the
  normal approximation with tie correction, without continuity correction (``method="asymptotic"``).
  These are scipy 1.17's ``method="auto"`` rules for the non-zero differences, except that ``auto``
  enumerates up to 13 tied differences (seconds per call); written out so that they do not change with scipy.
  When every difference is zero there is nothing to test: ``p = 1``;
- fewer than 2 pairs: no statistic (NaN), shown as ``"n/a"``.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
EXACT_MAX_N_NO_TIES = 50
EXACT_MAX_N_TIES = 10  # 2**10 sign assignments, each ranked by scipy: 0.5 s (scipy's auto: 13, 4-7 s)
DECIMALS = 9


class PairedStats(NamedTuple):
    """Mean of ``a - b``, its bootstrap interval ``[ci_low, ci_high]``, the Wilcoxon p-value (units of
    ``a`` and ``b`` for the first three); NaN for each when ``n < 2``. ``n``: the number of pairs."""
    mean: float
    ci_low: float
    ci_high: float
    p: float
    n: int


def paired_difference(a, b, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedStats:
    """Paired statistics of ``a - b``: ``a``, ``b`` of shape ``(n,)``, element ``i`` of each the same pair
    (e.g. accuracy in % of the trainable and the fixed run of seed ``i``); see the module docstring for
    the bootstrap (``resamples`` resamples, generator seed ``seed``) and the Wilcoxon options."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_difference needs two aligned 1-d arrays, got shapes {a.shape} and {b.shape}")
    d = np.round(a - b, DECIMALS)
    n = len(d)
    if n < 2:
        return PairedStats(math.nan, math.nan, math.nan, math.nan, n)
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(d[index].mean(axis=1), [tail, 100 - tail])
    return PairedStats(float(d.mean()), float(low), float(high), wilcoxon_p(d), n)


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences ``d`` (shape ``(n,)``), with the options
    of the module docstring."""
    return _wilcoxon_nonzero(tuple(float(v) for v in d if v != 0))


@functools.lru_cache(maxsize=256)  # a table and its figure test the same differences
def _wilcoxon_nonzero(nonzero: tuple[float, ...]) -> float:
    m = len(nonzero)
    if m == 0:
        return 1.0
    ties = len(set(map(abs, nonzero))) < m
    method = ("exact" if not ties and m <= EXACT_MAX_N_NO_TIES else
              stats.PermutationMethod(n_resamples=2 ** m) if ties and m <= EXACT_MAX_N_TIES else "asymptotic")
    return float(stats.wilcoxon(np.array(nonzero), zero_method="wilcox", correction=False,
                                alternative="two-sided", method=method).pvalue)


def difference_cell(s: PairedStats, decimals: int = 1) -> str:
    """``"+2.1 [+0.8, +3.4]"``: the signed mean and interval with ``decimals`` decimals; ``"n/a"`` (n < 2)."""
    if s.n < 2:
        return "n/a"
    return f"{s.mean:+.{decimals}f} [{s.ci_low:+.{decimals}f}, {s.ci_high:+.{decimals}f}]"


def p_text(p: float) -> str:
    """``"p=0.031"`` (three decimals), ``"p<0.001"`` below 0.001."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def wilcoxon_cell(s: PairedStats, unit: str = "") -> str:
    """``"p=0.031, n=5"`` (``unit`` appended to the count, e.g. ``" folds"``); ``"n/a, n=1"`` (n < 2)."""
    return f"{'n/a' if s.n < 2 else p_text(s.p)}, n={s.n}{unit}"
