"""DSTFT-style front-end: a Gaussian-window power STFT whose window length is learned per frame,
per frequency bin, both, or once, then a mel filterbank and log.

Leiber, Barrau, Marnissi & Abboud, "Differentiable adaptive short-time Fourier transform with respect
to the window length", ICASSP 2023 (the ``dstft`` package). The transform is
:func:`models.frontend_functional.varying_power_stft`; the window is DMEL's Gaussian (``lambd`` in
samples, a window ``6 lambd`` long), so ``variation="none"`` is DMEL with a fixed frame size.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from models import frontend_functional as FF
from models import functional as F
from models.frontends import checked_filterbank, gaussian_window_ms, initial_width_problems
from models.registry import register_frontend

VARIATIONS = ("none", "time", "frequency", "time_frequency")


class VaryingSTFTMel(nn.Module):
    """Gaussian-window ``|STFT|^2`` with learnable window widths -> HTK mel -> ``log(. + 1e-10)``.

    Args:
        sample_rate: Hz.
        n_points: signal length in samples (fixes the number of frames a ``time`` width varies over).
        init_lambd: initial window width (standard deviation) in samples, the same for every entry.
        hop_length: samples.
        n_mels: mel bands (output rows).
        variation: ``"none"`` (one width), ``"time"`` (one per frame), ``"frequency"`` (one per FFT
            bin) or ``"time_frequency"`` (one per bin and frame).
        min_lambd: floor of every width, samples.
        max_lambd: ceiling of every width, samples (``None``: ``2 init_lambd``); the frame and
            DFT size is ``n_fft = next_power_of_2(6 max_lambd)``, so every window's +-3 sigma fits.
        log: apply ``log(. + 1e-10)`` last (``False``: mel power, for a learnable compression after it).
        remove_mean: subtract each example's mean first (as DMEL).

    Learnable: ``log_lambd`` of shape ``(1 or n_fft // 2 + 1, 1 or frames)``, ``lambd = exp(log_lambd)``
    with ``log_lambd`` held inside ``[log min_lambd, log max_lambd]`` by a straight-through clamp: a
    width is never zero, negative or infinite and never outgrows its frame, whatever the step.

    Input ``(batch, n_points)``; output ``(batch, n_mels, n_points // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, n_points: int, init_lambd: float, hop_length: int = 80, n_mels: int = 64,
                 variation: str = "time", min_lambd: float = 0.5, max_lambd: float | None = None, log: bool = True,
                 remove_mean: bool = True):
        super().__init__()
        if variation not in VARIATIONS:
            raise ValueError(f"unknown variation {variation!r}; choose one of {VARIATIONS}")
        max_lambd = 2.0 * init_lambd if max_lambd is None else float(max_lambd)
        if not 0 < min_lambd <= init_lambd <= max_lambd:
            raise ValueError(f"need 0 < min_lambd ({min_lambd}) <= init_lambd ({init_lambd}) <= max_lambd "
                             f"({max_lambd}), all in samples")
        self.n_points, self.hop_length, self.variation = n_points, hop_length, variation
        self.min_lambd, self.max_lambd, self.log, self.remove_mean = min_lambd, max_lambd, log, remove_mean
        self.n_fft = F.next_power_of_2(F.N_STDS * max_lambd)
        n_freqs, n_frames = self.n_fft // 2 + 1, n_points // hop_length + 1
        shape = (n_freqs if "frequency" in variation else 1, n_frames if "time" in variation else 1)
        self.log_lambd = nn.Parameter(torch.full(shape, math.log(init_lambd)))
        self.register_buffer("lambd_init", self.lambd().detach().clone(), persistent=False)
        self.register_buffer("kernels", F.dft_kernels(self.n_fft) if shape[0] > 1 else None, persistent=False)
        self.register_buffer("fb", checked_filterbank("VaryingSTFTMel", self.n_fft, n_mels, sample_rate),
                             persistent=False)

    def lambd(self) -> torch.Tensor:
        """Window widths in samples, ``log_lambd``'s shape, inside ``[min_lambd, max_lambd]``."""
        # clamped in the log domain: exp of a clamped value is finite for any parameter (exp(+-inf) is not)
        return FF.straight_through_clamp(self.log_lambd, math.log(self.min_lambd), math.log(self.max_lambd)).exp()

    def drift(self) -> dict[str, float]:
        """``window_length_change``: ``||lambda - lambda0|| / ||lambda0||`` over all the widths."""
        return {"window_length_change": FF.relative_change(self.lambd(), self.lambd_init)}

    @torch.no_grad()
    def export_learned(self) -> dict:
        """``lambda_samples``: the window widths the forward pass uses, ``(n_freqs or 1, n_frames or 1)``
        samples (per ``variation``); the mel ``filterbank`` ``(n_fft // 2 + 1, n_mels)``; scalars ``n_fft``,
        ``hop_length`` (samples), ``min_lambd`` and ``max_lambd`` (samples)."""
        return {"lambda_samples": self.lambd().cpu().numpy(), "filterbank": self.fb.cpu().numpy(),
                "n_fft": self.n_fft, "hop_length": self.hop_length, "min_lambd": self.min_lambd,
                "max_lambd": self.max_lambd, "n_mels": int(self.fb.shape[1])}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.log_lambd.shape[1] > 1 and x.shape[-1] != self.n_points:
            raise ValueError(f"a time-varying window was built for {self.n_points} samples, got {x.shape[-1]}")
        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        power = FF.varying_power_stft(x, self.lambd(), self.n_fft, self.hop_length, self.kernels)
        mel = F.apply_filterbank(power, self.fb)
        return torch.log(mel + F.LOG_EPS) if self.log else mel


def _dstft_problems(config: dict, sample_rate: int | None, n_points: int) -> list[str]:
    """The initial width between the floor ``min_lambd`` and the ceiling ``dstft_max_window_ms`` (``None``:
    twice the initial width)."""
    init = config["init_lambd"] if config["init_window_ms"] is None else F.ms_to_lambd(config["init_window_ms"],
                                                                                        sample_rate)
    floor = config["min_lambd"]
    ceiling = 2 * init if config["dstft_max_window_ms"] is None else F.ms_to_lambd(config["dstft_max_window_ms"],
                                                                                   sample_rate)
    return initial_width_problems(config, sample_rate, init, floor, ceiling, "min_lambd to dstft_max_window_ms")


@register_frontend(
    "dstft", label=lambda c: "DSTFT", initial_window=gaussian_window_ms, problems=_dstft_problems,
    drift=("window_length_change",),
    description="DSTFT: Gaussian-window STFT whose width is learned per frame and/or per bin, then mel bands",
    defaults={
        "dstft_variation": "time",    # dstft: the Gaussian window width varies per frame (time) | per FFT bin (frequency) | both (time_frequency) | none (one width); starts at init_window_ms (6 lambda, ms) or init_lambd
        "dstft_max_window_ms": None,  # dstft: ceiling on every window 6 lambda, ms, fixing n_fft = next power of two (None: twice the initial window)
    })
def build_dstft(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """Gaussian-window STFT whose width varies per ``dstft_variation``: initial width ``init_window_ms``
    (6 lambda, ms) or ``init_lambd`` (samples), floor ``min_lambd`` (samples), ceiling
    ``dstft_max_window_ms`` (6 lambda, ms; ``None``: twice the initial width)."""
    init_lambd = config["init_lambd"]
    if config["init_window_ms"] is not None:
        init_lambd = F.ms_to_lambd(config["init_window_ms"], sample_rate)
    max_ms = config["dstft_max_window_ms"]
    return VaryingSTFTMel(sample_rate, n_points, init_lambd, hop_length=config["hop_length"],
                          n_mels=config["n_mels"], variation=config["dstft_variation"], min_lambd=config["min_lambd"],
                          max_lambd=None if max_ms is None else F.ms_to_lambd(max_ms, sample_rate),
                          log=config["compression"] == "log")
