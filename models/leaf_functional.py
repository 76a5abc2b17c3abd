"""Pure functions for LEAF, EfficientLEAF and PCEN.

Units: a Gabor filter's centre frequency ``center`` is in **radians per sample** (``2 pi f / fs``,
in ``[0, pi]``) and its Gaussian envelope's standard deviation ``sigma`` in **samples**; the
low-pass pooling window's standard deviation ``std`` is in samples of the signal it pools. Signals
are ``(batch, time)``, filterbank outputs ``(batch, n_filters, frames)``.

References: Zeghidour et al., "LEAF: A learnable frontend for audio classification", ICLR 2021
(Gabor filters initialised on the mel scale, Gaussian low-pass pooling, sPCEN); Schlueter &
Gutenbrunner, "EfficientLEAF: A faster learnable audio frontend of questionable use", EUSIPCO 2022
(filters grouped by bandwidth, strided convolution per group, PCEN parameters learned in log
space); Wang et al., "Trainable frontend for robust and far-field keyword spotting", ICASSP 2017
(PCEN).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torchaudio

# sigma = FWHM_Z / fwhm, where fwhm is the full width at half maximum of the filter's squared
# frequency response as a fraction of the sampling rate (LEAF's bandwidth constraint, in samples).
FWHM_Z = math.sqrt(2 * math.log(2)) / math.pi


def straight_through_clamp(x: torch.Tensor, low: float | None = None, high: float | None = None) -> torch.Tensor:
    """``x`` clamped to ``[low, high]`` in value, with the identity's gradient: a parameter on a bound
    still learns to leave it (``torch.clamp``'s zero gradient there froze LEAF's narrowest filters,
    which start on the bandwidth bound)."""
    return x + (x.clamp(low, high) - x).detach()


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale ``1127 ln(1 + f / 700)``; ``f`` in Hz."""
    return 1127.0 * torch.log1p(torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_gabor_params(n_filters: int, sample_rate: float, f_min: float = 60.0,
                     f_max: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gabor parameters that mimic an HTK mel filterbank of ``n_filters`` triangles (analytic,
    as EfficientLEAF; LEAF measured them on a discretised mel matrix instead).

    The triangles' peaks are ``n_filters + 2`` points equally spaced in mel from ``f_min`` to
    ``f_max`` Hz (default ``sample_rate / 2``); filter ``i`` is centred on peak ``i + 1`` and its
    base spans ``B_i = peak[i + 2] - peak[i]`` Hz. A Gaussian envelope of ``sigma = fs / (2 B)``
    samples gives a squared frequency response with std ``B / (pi sqrt 2) ~ 0.225 B`` Hz, against
    ``B / sqrt 24 ~ 0.204 B`` for the triangle.

    Returns:
        ``(center, sigma)``: float32 ``(n_filters,)`` tensors, radians per sample and samples.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max} Hz "
                         f"at {sample_rate} Hz")
    mels = torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_filters + 2, dtype=torch.float64)
    peaks_hz = 700.0 * torch.expm1(mels / 1127.0)
    center = 2 * math.pi * peaks_hz[1:-1] / sample_rate
    sigma = sample_rate / (2 * (peaks_hz[2:] - peaks_hz[:-2]))
    return center.float(), sigma.float()


def gabor_impulse_responses(center: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Complex Gabor filters ``phi[n] = exp(i center n) exp(-n^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)``
    for ``n = -(size // 2) .. (size - 1) // 2`` (unit DC gain of the envelope: a sinusoid at the
    centre frequency comes out with its amplitude halved, the analytic half).

    Args:
        center: ``(n_filters,)`` radians per sample.
        sigma: ``(n_filters,)`` envelope standard deviation, samples (> 0).
        size: taps (odd, so the filter is centred).
    Returns:
        ``(2, n_filters, size)``: real parts, then imaginary parts; differentiable in both inputs.
    """
    n = torch.arange(size, dtype=center.dtype, device=center.device) - size // 2
    envelope = torch.exp(-0.5 * (n / sigma[:, None]) ** 2) / (math.sqrt(2 * math.pi) * sigma[:, None])
    phase = center[:, None] * n
    return torch.stack([envelope * torch.cos(phase), envelope * torch.sin(phase)])


def gabor_energy(x: torch.Tensor, center: torch.Tensor, sigma: torch.Tensor, size: int,
                 stride: int = 1) -> torch.Tensor:
    """Squared modulus of the complex Gabor filterbank's output, sampled every ``stride`` samples.

    Args:
        x: ``(batch, time)`` waveform.
        center, sigma, size: see :func:`gabor_impulse_responses`.
        stride: output step in samples (EfficientLEAF decimates inside the convolution).
    Returns:
        ``(batch, n_filters, (time - 1) // stride + 1)``; output ``k`` is centred on sample ``k stride``
        (zero padding ``size // 2`` each side).
    """
    kernels = gabor_impulse_responses(center, sigma, size).reshape(-1, 1, size)  # (2 n_filters, 1, size)
    z = torch.nn.functional.conv1d(x[:, None], kernels.to(x.dtype), stride=stride, padding=size // 2)
    re, im = z.chunk(2, dim=1)
    return re.square() + im.square()


def gaussian_lowpass_kernels(std: torch.Tensor, size: int) -> torch.Tensor:
    """Gaussian windows ``w[m] = exp(-0.5 ((m - (size - 1) / 2) / std)^2)``, ``m = 0..size-1``, peak 1.

    LEAF's pooling parameter is ``width = std / ((size - 1) / 2)``, initialised at 0.4 (close to a Hann
    window of ``size`` taps).

    Args:
        std: ``(n_filters,)`` standard deviations, samples (> 0).
        size: taps.
    Returns:
        ``(n_filters, size)``.
    """
    m = torch.arange(size, dtype=std.dtype, device=std.device) - (size - 1) / 2
    return torch.exp(-0.5 * (m / std[:, None]) ** 2)


def lowpass_pool(energy: torch.Tensor, kernels: torch.Tensor, stride: int, n_frames: int) -> torch.Tensor:
    """Depthwise low-pass pooling: frame ``j`` is ``sum_m kernels[c, m] energy[c, j stride + m - size // 2]``
    (zeros outside), so each frame is centred on input sample ``j stride``.

    Args:
        energy: ``(batch, n_filters, length)``.
        kernels: ``(n_filters, size)``, ``size`` odd.
        stride: input samples per frame.
        n_frames: frames to return (the input is zero-padded or cropped at the end to fit).
    Returns:
        ``(batch, n_filters, n_frames)``.
    """
    n_filters, size = kernels.shape
    needed = (n_frames - 1) * stride + size  # padded length that gives exactly n_frames
    right = needed - size // 2 - energy.shape[-1]
    padded = torch.nn.functional.pad(energy, (size // 2, max(right, 0)))[..., :needed]
    return torch.nn.functional.conv1d(padded, kernels[:, None].to(energy.dtype), stride=stride, groups=n_filters)


class GaborGroup(NamedTuple):
    """One convolution of a Gabor filterbank: filters ``start:stop``, ``kernel_size`` taps at the
    input rate, outputs every ``conv_stride`` samples, pooled by ``pool_size`` taps of that
    decimated signal every ``pool_stride`` of its samples (``conv_stride * pool_stride = hop``)."""
    start: int
    stop: int
    kernel_size: int
    conv_stride: int
    pool_size: int
    pool_stride: int


def _odd(n: float) -> int:
    n = max(int(n), 1)
    return n + 1 - n % 2


def leaf_groups(n_filters: int, window_size: int, hop_length: int) -> list[GaborGroup]:
    """LEAF: every filter at the full rate with ``window_size`` taps, pooled by ``window_size`` taps
    every ``hop_length`` samples."""
    return [GaborGroup(0, n_filters, window_size, 1, window_size, hop_length)]


def efficientleaf_groups(center: torch.Tensor, sigma: torch.Tensor, n_groups: int, window_size: int,
                         hop_length: int, conv_win_factor: float = 6.0, stride_factor: float = 16.0,
                         min_pool_taps: int = 8) -> list[GaborGroup]:
    """EfficientLEAF's geometry: ``n_groups`` contiguous groups of filters (sorted by centre frequency,
    so by bandwidth on the mel scale), each with ``conv_win_factor`` times its widest sigma as kernel
    size and the largest divisor of ``hop_length`` not above ``max(1, stride_factor pi / max centre)``
    as convolution stride (``stride_factor = 1``: Nyquist for the highest centre frequency; larger
    factors rely on the complex filter output being band-limited to the filter's bandwidth). The
    pooling window shrinks to ``window_size / conv_stride`` taps (odd), and the stride is also kept
    at most ``window_size / min_pool_taps`` (our addition: with 3 taps, stride 80 for a 201-sample
    window at 8 kHz, the lowest bands were 20-33 % off the full-rate energies at their peaks).

    Args:
        center: ``(n_filters,)`` radians per sample; sigma: ``(n_filters,)`` samples (host values).
    """
    n_filters = center.numel()
    if not 1 <= n_groups <= n_filters:
        raise ValueError(f"n_groups={n_groups} must be between 1 and the number of filters ({n_filters})")
    divisors = [d for d in range(1, hop_length + 1) if hop_length % d == 0]
    bounds = [g * n_filters // n_groups for g in range(n_groups + 1)]
    groups = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        top = float(center[start:stop].max())
        limit = max(1.0, min(stride_factor * math.pi / top if top > 0 else math.inf, window_size / min_pool_taps))
        conv_stride = max(d for d in divisors if d <= limit)
        groups.append(GaborGroup(start, stop, _odd(conv_win_factor * float(sigma[start:stop].max())), conv_stride,
                                 _odd(window_size / conv_stride + 0.5), hop_length // conv_stride))
    return groups


def ema_smoother(energy: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """PCEN's first-order IIR smoother ``M[t] = (1 - s) M[t - 1] + s E[t]``, ``M[0] = E[0]`` (LEAF's start).

    Run by ``torchaudio.functional.lfilter`` (a compiled loop on the CPU, differentiable in ``s``):
    feeding ``E[0] / s`` as the first input makes the zero-state filter start at ``E[0]``.

    Args:
        energy: ``(..., n_bands, frames)``, non-negative.
        s: ``(n_bands,)`` smoothing coefficients in ``(0, 1]``.
    Returns:
        ``(..., n_bands, frames)``, non-negative.
    """
    shape = energy.shape
    flat = energy.reshape(-1, shape[-2], shape[-1])
    s = s.to(energy.dtype)
    first = flat[..., :1] / s[:, None]
    x = torch.cat([first, flat[..., 1:]], dim=-1)
    a = torch.stack([torch.ones_like(s), s - 1], dim=1)  # (n_bands, 2): M[t] - (1 - s) M[t-1]
    b = torch.stack([s, torch.zeros_like(s)], dim=1)     # (n_bands, 2): s E[t]
    return torchaudio.functional.lfilter(x, a, b, clamp=False, batching=True).reshape(shape)


def pcen(energy: torch.Tensor, smoother: torch.Tensor, alpha: torch.Tensor, delta: torch.Tensor, r: torch.Tensor,
         eps: float = 1e-12) -> torch.Tensor:
    """Per-channel energy normalisation ``(E / (eps + M)^alpha + delta)^r - delta^r``.

    The gain is computed as ``exp(-alpha log(eps + M))`` (finite for ``M = 0``).

    Args:
        energy: ``E``, ``(..., n_bands, frames)``, non-negative.
        smoother: ``M``, same shape (:func:`ema_smoother`).
        alpha, delta, r: ``(n_bands,)``, positive.
        eps: added to ``M``.
    Returns:
        ``(..., n_bands, frames)``.
    """
    alpha, delta, r = alpha[:, None], delta[:, None], r[:, None]
    gain = torch.exp(-alpha * torch.log(eps + smoother))
    return (energy * gain + delta) ** r - delta ** r
