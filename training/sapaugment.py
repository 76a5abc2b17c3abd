"""SapAugment: a per-example augmentation strength from the example's loss rank in its batch.

Hu et al., "SapAugment: Learning A Sample Adaptive Policy for Data Augmentation", ICASSP 2021
(arXiv:2011.01156), as DeepSpectrumLite implements it (``AugmentableModel.train_step``,
github.com/DeepSpectrum/DeepSpectrumLite, ``src/deepspectrumlite/lib/model/modules/augmentable_model.py``;
its README documents ``sap_aug_a`` and ``sap_aug_s``, default config ``sap_aug_a=0.5``, ``sap_aug_s=10``).

Each step, the batch's per-example losses are computed on the un-augmented batch by a forward pass
without gradients in eval mode (DeepSpectrumLite: ``self(x, training=False)`` on the same batch, before
augmenting it; not the previous step's losses). The examples are ranked by ascending loss; the one of rank
``i`` (``i = 1`` the lowest loss, ``i = n`` the highest) gets the strength

    lambda(r) = 1 - I_r(s * (1 - a), s * a),     r = i / n,

``I_r(alpha, beta)`` the regularized incomplete beta function (the CDF of Beta(alpha, beta) at ``r``;
``tf.math.betainc`` there, :func:`scipy.special.betainc` here). So easy (low-loss) examples are augmented
strongly (lambda near 1) and hard (high-loss) ones mildly: the highest-loss example gets
``1 - I_1 = 0``, no augmentation. The curve falls from 1 to 0 around ``r = 1 - a`` (Beta's mean), the
steeper the larger ``s``. The strength then sets, per example, CutMix's patch side, SpecAugment's mask widths
and the waveform augmentation's gain, noise level and delay between their minimum and maximum
(:mod:`models.batch_augment`, :class:`SapWaveformAugment`).

The curve is evaluated on the host once per batch size (the values at ``r = 1/n ... n/n`` never change);
ranks are ``torch.argsort`` on the device, so a step adds no transfer from the device.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.special import betainc

from models.batch_augment import Mix
from training.loop import classification_loss

SAP_A, SAP_S = 0.5, 10.0  # DeepSpectrumLite's default config (sap_aug_a, sap_aug_s)


def sap_curve(rank: np.ndarray | float, a: float = SAP_A, s: float = SAP_S) -> np.ndarray:
    """SapAugment's strength at the relative loss rank ``rank`` in (0, 1] (1: the highest loss):
    ``1 - I_rank(s * (1 - a), s * a)``; ``a`` in (0, 1), ``s`` > 0."""
    if not 0 < a < 1 or not s > 0:
        raise ValueError(f"SapAugment needs 0 < a < 1 and s > 0, got a={a!r}, s={s!r}")
    return 1.0 - betainc(s * (1 - a), s * a, np.asarray(rank, dtype=np.float64))


@functools.lru_cache(maxsize=64)
def _rank_table(n: int, a: float, s: float, device: str) -> torch.Tensor:
    """``sap_curve(i / n)`` for ``i = 1 .. n``, float32 on ``device`` (cached: one copy per batch size)."""
    return torch.tensor(sap_curve(np.arange(1, n + 1) / n, a, s), dtype=torch.float32, device=device)


def sap_strengths(losses: torch.Tensor, a: float = SAP_A, s: float = SAP_S) -> torch.Tensor:
    """Each example's strength from its loss's rank in ``losses`` ``(batch,)`` (ties by position):
    the ``i``-th smallest loss gets ``sap_curve(i / n)``. On ``losses``' device, no transfer back."""
    order = torch.argsort(losses.detach(), stable=True)  # order[i]: the example of rank i + 1
    rank = torch.argsort(order)                           # rank[j]: example j's rank - 1
    return _rank_table(len(losses), float(a), float(s), str(losses.device))[rank]


class SapPolicy:
    """SapAugment's policy for a train step: :meth:`strengths` of a batch from its un-augmented losses."""

    def __init__(self, a: float = SAP_A, s: float = SAP_S):
        sap_curve(0.5, a, s)  # refuse a or s out of range now
        self.a, self.s = a, s

    def strengths(self, model, x: torch.Tensor, y: torch.Tensor, loss_kind: str = "ce") -> torch.Tensor:
        """The per-example losses of ``model`` on ``(x, y)`` (eval mode, no gradient: no dropout, no masks, batch
        norms on their running statistics, no random draw), ranked into strengths. The model's mode is put back."""
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits, _ = model(x)
            losses = classification_loss(logits, y, loss_kind, reduction="none")
        model.train(was_training)
        return sap_strengths(losses, self.a, self.s)


def build_sap_policy(config: dict) -> SapPolicy | None:
    """The policy ``config["sapaugment"]`` asks for, or ``None``."""
    if not config.get("sapaugment"):
        return None
    return SapPolicy(config["sapaugment_a"], config["sapaugment_s"])


def mixed_loss(logits: torch.Tensor, y: torch.Tensor, mix: Mix | None, kind: str = "ce") -> torch.Tensor:
    """The batch's mean loss with CutMix's labels: ``(1 - lam) * loss(y) + lam * loss(y[perm])`` per example
    (the loss of the soft label ``(1 - lam) * y + lam * y[perm]``: both losses are linear in the target);
    the plain loss when ``mix`` is ``None``."""
    if mix is None:
        return classification_loss(logits, y, kind)
    own = classification_loss(logits, y, kind, reduction="none")
    other = classification_loss(logits, y[mix.perm], kind, reduction="none")
    lam = mix.lam.to(own.dtype)
    return ((1 - lam) * own + lam * other).mean()


def _colored_noise(n: int, length: int, slope: torch.Tensor, device) -> torch.Tensor:
    """``(n, length)`` noise of unit RMS, shaped as torch-audiomentations' ``AddColoredNoise`` shapes it: white
    noise's spectrum divided by ``linspace(1, sqrt(length / 2), bins) ** slope`` (its ``f_decay``: 0 white,
    1 pink, 2 brown, negative blue/violet), over the segment (there: over one second, tiled)."""
    spectrum = torch.fft.rfft(torch.randn(n, length, device=device), dim=-1)
    ramp = torch.linspace(1.0, math.sqrt(length / 2), spectrum.shape[-1], device=device)
    noise = torch.fft.irfft(spectrum / ramp ** slope[:, None], n=length, dim=-1)
    return noise / noise.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-12)


class SapWaveformAugment:
    """The waveform augmentation of :mod:`training.augment` with a per-example strength in [0, 1] (SapAugment),
    each op applied to an example with probability ``p``:

    * gain of ``6 * strength`` dB, its sign at random (``augment_waveform``: uniform in +-6 dB);
    * coloured noise (spectral slope uniform in [-2, 2]) at ``40 - 30 * strength`` dB SNR (10-40 dB);
    * a delay of ``0.1 * strength`` of the segment, zero-filled (up to 10 %).

    Written here because torch-audiomentations draws one range for the whole batch; draws come from torch's
    global generator of the waveforms' device. Called as ``augment(x, strength)`` on ``(batch, time)``.
    """

    def __init__(self, sample_rate: int, p: float = 0.5):
        self.sample_rate, self.p = sample_rate, p

    def __call__(self, x: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        n, length = x.shape
        device, strength = x.device, strength.to(x.dtype)
        on = torch.rand(3, n, device=device) < self.p
        sign = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0).to(x.dtype)
        gain_db = sign * 6.0 * strength * on[0]
        x = x * 10.0 ** (gain_db[:, None] / 20)
        slope = torch.rand(n, device=device) * 4 - 2
        noise = _colored_noise(n, length, slope, device).to(x.dtype)
        rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt()
        snr_db = 40.0 - 30.0 * strength
        x = x + on[1, :, None] * noise * rms / 10.0 ** (snr_db[:, None] / 20)
        shift = torch.round(0.1 * strength * length).long() * on[2]
        idx = torch.arange(length, device=device) - shift[:, None]  # output sample t reads input t - shift
        delayed = torch.gather(x, 1, idx.clamp_min(0))
        return torch.where(idx >= 0, delayed, torch.zeros((), dtype=x.dtype, device=device))


def pass_strength(augment, x: torch.Tensor, strength: torch.Tensor | None) -> torch.Tensor:
    """``augment(x, strength)`` for a strength-driven augmentation, ``augment(x)`` otherwise."""
    if strength is not None and isinstance(augment, SapWaveformAugment):
        return augment(x, strength)
    return augment(x)
