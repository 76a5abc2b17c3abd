"""Pure functions for the SincNet, trainable-mel and varying-window (DSTFT-style) front-ends.

Units: frequencies in **Hz** unless a name says otherwise; ``lambd`` is a Gaussian window's
standard deviation in **samples** (as in :mod:`models.functional`: the window ``6 lambd`` samples
long); hops and kernel lengths in samples. Shapes follow torchaudio: ``(..., time)`` in,
``(..., freq, frames)`` out, ``frames = time // hop + 1`` (centred frames, zero padding).

References: Ravanelli & Bengio, "Speaker recognition from raw waveform with SincNet", SLT 2018
(sinc band-pass filters); Leiber et al., "Differentiable adaptive short-time Fourier transform with
respect to the window length", ICASSP 2023 (a window length per frame and/or per frequency bin).
"""
from __future__ import annotations

import torch
import torch.utils.checkpoint

from models import functional as F


def straight_through_clamp(x: torch.Tensor, low: float | torch.Tensor | None = None,
                           high: float | torch.Tensor | None = None) -> torch.Tensor:
    """``clamp(x, low, high)`` in the forward pass, the identity's gradient in the backward pass.

    A value held on a bound keeps receiving the loss's gradient, so it can leave the bound again
    (``torch.clamp``'s gradient is zero there, which freezes it; see
    :meth:`models.frontends.GaussianSpectrogram.effective_lambd`).
    """
    return x + (x.clamp(low, high) - x).detach()


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """HTK mel scale, ``2595 log10(1 + hz / 700)`` (torchaudio's ``mel_scale="htk"``)."""
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_band_edges(n_bands: int, f_min: float, f_max: float) -> torch.Tensor:
    """``n_bands + 1`` band edges in Hz, equally spaced on the HTK mel scale from ``f_min`` to ``f_max``
    (float64, ``(n_bands + 1,)``): band ``i`` is ``[edges[i], edges[i + 1]]`` (SincNet's initialisation)."""
    mels = torch.linspace(float(hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
                          float(hz_to_mel(torch.tensor(f_max, dtype=torch.float64))), n_bands + 1,
                          dtype=torch.float64)
    return mel_to_hz(mels)


def sinc_bandpass_filters(low_hz: torch.Tensor, high_hz: torch.Tensor, kernel_size: int,
                          sample_rate: float) -> torch.Tensor:
    """Hamming-windowed ideal band-pass FIR filters with unit pass-band gain (SincNet's filters).

    ``h[n] = (2 f2 sinc(2 f2 m) - 2 f1 sinc(2 f1 m)) hamming[n]`` with ``m = n - (K - 1) / 2`` and
    ``f1, f2`` the cut-offs in cycles per sample (``low_hz / sample_rate``, ``high_hz / sample_rate``);
    ``sinc(u) = sin(pi u) / (pi u)``; the symmetric Hamming window ``0.54 - 0.46 cos(2 pi n / (K - 1))``.
    This is ``scipy.signal.firwin(K, [f1, f2], pass_zero=False, window="hamming", scale=False)``.

    Args:
        low_hz, high_hz: ``(n_filters,)`` cut-offs in Hz, ``0 <= low < high <= sample_rate / 2``;
            gradients flow through both.
        kernel_size: ``K`` taps (odd, so the filter is centred on a sample).
        sample_rate: Hz.
    Returns:
        ``(n_filters, K)`` filters, dtype and device of ``low_hz``.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"sinc filters need an odd kernel_size, got {kernel_size}")
    m = torch.arange(kernel_size, dtype=low_hz.dtype, device=low_hz.device) - (kernel_size - 1) / 2
    f1 = (low_hz / sample_rate)[:, None]
    f2 = (high_hz / sample_rate)[:, None]
    ideal = 2 * f2 * torch.sinc(2 * f2 * m) - 2 * f1 * torch.sinc(2 * f1 * m)
    return ideal * torch.hamming_window(kernel_size, periodic=False, dtype=low_hz.dtype, device=low_hz.device)


# Intermediate float elements a full-rate filterbank (SincNet, LEAF) may hold for a whole batch before
# :func:`checkpointed_over_batch` splits it: 2**26 float32 is 256 MB. A GTZAN batch of 16 clips of 30 s
# through 64 full-rate filters is 16 x 64 x 661,500 = 6.8e8 elements (2.7 GB for one tensor).
MAX_BATCH_ELEMENTS = 2**26


def checkpointed_over_batch(fn, x: torch.Tensor, elements_per_example: int,
                            max_elements: int = MAX_BATCH_ELEMENTS) -> torch.Tensor:
    """``fn(x)``, with its intermediates bounded when it would hold more than ``max_elements`` of them.

    ``fn`` maps ``(batch, ...)`` to ``(batch, ...)`` example by example (a filterbank and its pooling),
    holding about ``elements_per_example`` intermediate elements per example for the backward (the
    full-rate filter outputs). While gradients are recorded and ``batch * elements_per_example``
    exceeds ``max_elements``, ``fn`` runs on chunks of the batch under activation checkpointing
    (``torch.utils.checkpoint``, non-reentrant): each chunk keeps only its input and output, and its
    intermediates are recomputed chunk by chunk in the backward. The peak is then about one chunk's
    intermediates instead of the batch's, for one more forward of ``fn`` per step. Values and
    gradients (to ``x`` and to any tensor ``fn`` closes over) are those of ``fn(x)``.

    Returns:
        ``fn``'s output for the whole batch (chunks concatenated along dim 0).
    """
    if not torch.is_grad_enabled() or len(x) * elements_per_example <= max_elements:
        return fn(x)
    per_chunk = max(1, max_elements // elements_per_example)
    return torch.cat([torch.utils.checkpoint.checkpoint(fn, chunk, use_reentrant=False)
                      for chunk in x.split(per_chunk)])


def pooled_energy(y: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Mean of ``y^2`` over ``2 hop_length`` samples centred on every ``hop_length``-th sample.

    Frame ``t`` averages samples ``[t hop - hop, t hop + hop)`` (zeros outside the signal), so the
    frame count matches a ``center=True`` STFT with that hop.

    Args:
        y: ``(batch, channels, time)`` filter outputs.
        hop_length: samples.
    Returns:
        ``(batch, channels, time // hop_length + 1)`` mean power.
    """
    padded = torch.nn.functional.pad(y.square(), (hop_length, hop_length))
    return torch.nn.functional.avg_pool1d(padded, 2 * hop_length, stride=hop_length)


def gaussian_windows(lambd: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Unit-energy Gaussian windows ``exp(-0.5 ((m - n_fft / 2) / lambd)^2)``, ``m = 0..n_fft-1``, one per
    entry of ``lambd`` (the window of :func:`models.functional.gaussian_window`, batched).

    Args:
        lambd: ``(...)`` standard deviations in samples (> 0); gradients flow through it.
        n_fft: window length in samples.
    Returns:
        ``(..., n_fft)`` windows, each with ``sum w^2 = 1``.
    """
    m = torch.arange(n_fft, dtype=lambd.dtype, device=lambd.device) - n_fft / 2
    window = torch.exp(-0.5 * (m / lambd[..., None]) ** 2)
    return window / window.square().sum(-1, keepdim=True).sqrt()


def varying_power_stft(x: torch.Tensor, lambd: torch.Tensor, n_fft: int, hop_length: int,
                       kernels: torch.Tensor | None = None) -> torch.Tensor:
    """``|STFT|^2`` with a Gaussian window whose width varies over frames and/or frequency bins.

    ``S[f, t] = |sum_n frame_t[n] w_{f,t}[n] exp(-2 pi i f n / n_fft)|^2`` with ``frame_t`` the
    ``n_fft`` samples centred on ``t hop_length`` (zero padding, ``center=True``) and ``w_{f,t}``
    the unit-energy Gaussian window of width ``lambd[f, t]`` (:func:`gaussian_windows`).

    ``lambd`` of shape ``(1, 1)`` (one window), ``(1, frames)`` (one per frame: one FFT of the
    windowed frames), ``(n_freqs, 1)`` (one per bin: one matmul with window-weighted DFT kernels)
    or ``(n_freqs, frames)`` (one per bin and frame: a batched matmul over frames), where
    ``n_freqs = n_fft // 2 + 1``, ``frames = time // hop_length + 1``. No intermediate has both a
    batch and a frequency-and-frame-and-sample axis, so the per-bin modes cost a matmul, not
    ``batch x n_freqs x frames x n_fft`` memory.

    Args:
        x: ``(batch, time)`` waveform.
        lambd: window widths in samples, shape as above; gradients flow through it.
        n_fft: frame length and DFT size in samples (the window support).
        hop_length: samples.
        kernels: ``(2, n_freqs, n_fft)`` :func:`models.functional.dft_kernels` on ``x``'s device (a
            caller's cached copy), or ``None`` to build them; read only when ``lambd`` varies over bins.
    Returns:
        ``(batch, n_freqs, frames)`` power spectrogram.
    """
    n_freqs, n_frames = n_fft // 2 + 1, x.shape[-1] // hop_length + 1
    if lambd.dim() != 2 or lambd.shape[0] not in (1, n_freqs) or lambd.shape[1] not in (1, n_frames):
        raise ValueError(f"lambd must have shape (1 or {n_freqs}, 1 or {n_frames}), got {tuple(lambd.shape)}")
    padded = torch.nn.functional.pad(x, (n_fft // 2, n_fft // 2))
    frames = padded.unfold(-1, n_fft, hop_length)                      # (batch, frames, n_fft)
    windows = gaussian_windows(lambd.to(x.dtype), n_fft)               # (1 or F, 1 or T, n_fft)
    if lambd.shape[0] == 1:                                            # one window for every bin: FFT
        z = torch.fft.rfft(frames * windows[0], dim=-1)                # (batch, frames, F)
        return (z.real.square() + z.imag.square()).transpose(-1, -2)
    kernels = (F.dft_kernels(n_fft) if kernels is None else kernels).to(x)
    kernels = kernels[:, :, None] * windows                            # (2, F, 1 or T, n_fft)
    kernels = kernels.permute(2, 0, 1, 3).flatten(1, 2)                # (1 or T, 2F: re then im, n_fft)
    if lambd.shape[1] == 1:
        z = frames @ kernels[0].T                                      # (batch, frames, 2F)
    else:
        z = torch.einsum("btn,tcn->btc", frames, kernels)              # per frame: (batch, 2F)
    re, im = z.unflatten(-1, (2, n_freqs)).unbind(-2)
    return (re.square() + im.square()).transpose(-1, -2)


def relative_change(current: torch.Tensor, initial: torch.Tensor) -> float:
    """``||current - initial|| / ||initial||`` (Frobenius) as a host float: a parameter group's drift
    from its initialisation (read once per epoch, never in a training step)."""
    return float(torch.linalg.norm(current.detach() - initial) / torch.linalg.norm(initial))
