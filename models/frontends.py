"""Front-end layers: thin ``nn.Module``s over :mod:`models.functional`.

* :class:`GaussianSpectrogram` (DSPEC): power spectrogram with a Gaussian window whose
  width ``lambd`` (samples) is a parameter; ``trainable=False`` is the fixed-resolution
  baseline (same module, same code path).
* :class:`DMEL`: :class:`GaussianSpectrogram` composed with a cached mel filterbank and log.
* :class:`FixedMel`: torchaudio's standard Hann-window ``MelSpectrogram`` plus the same log.

All take ``(batch, time)`` waveforms.
"""
from __future__ import annotations

import warnings

import torch
import torchaudio
from torch import nn

from models import functional as F

# Working-set bound for one STFT call, in frame samples (frames x n_fft). Larger calls are
# memory-bound on CPU: at 300 ms / n_fft 4096 a whole batch of 64 is ~3x slower than chunks of
# 2 (benchmarks/bench_frontend.py). 2**20 keeps short windows batched and long ones chunked.
CHUNK_ELEMENTS = 2**20


class GaussianSpectrogram(nn.Module):
    """Differentiable Gaussian-window power spectrogram (DSPEC).

    Args:
        init_lambd: initial window standard deviation in samples.
        n_points: signal length in samples (fixes the ``full`` window and the lambda ceiling).
        hop_length: hop in samples.
        window_mode: ``"full"`` (L = n_points, n_fft = 2L) or ``"optimized"``
            (L = n_fft = next power of two of 6 lambda, from the detached lambda each forward).
        normalize_window: unit-energy window.
        trainable: learn ``lambd``; ``False`` freezes it (the baseline).
        remove_mean: subtract each example's mean before the transform (as the paper).
        min_lambd: floor for lambda in samples; the ceiling is ``n_points``.
        chunk_size: examples per STFT call; ``None`` picks ``CHUNK_ELEMENTS // (frames * n_fft)``
            (at least 1), so short windows run as one batch and long ones in small chunks.

    Input ``(batch, n_points)``; output ``(batch, n_fft // 2 + 1, n_points // hop_length + 1)``.
    """

    def __init__(self, init_lambd: float, n_points: int, hop_length: int = 1, window_mode: str = "full",
                 normalize_window: bool = True, trainable: bool = True, remove_mean: bool = True,
                 min_lambd: float = 0.5, chunk_size: int | None = None):
        super().__init__()
        if window_mode not in F.WINDOW_MODES:
            raise ValueError(f"unknown window_mode {window_mode!r}; choose one of {F.WINDOW_MODES}")
        if not min_lambd <= abs(init_lambd) <= n_points:
            raise ValueError(f"init_lambd={init_lambd} samples is outside [{min_lambd}, {n_points}] "
                             "(the floor and the signal length)")
        self.n_points, self.hop_length, self.window_mode = n_points, hop_length, window_mode
        self.normalize_window, self.remove_mean = normalize_window, remove_mean
        self.min_lambd, self.max_lambd, self.chunk_size = min_lambd, float(n_points), chunk_size
        self.lambd = nn.Parameter(torch.tensor(float(init_lambd)), requires_grad=trainable)

    def effective_lambd(self) -> torch.Tensor:
        """``|lambd|`` kept inside ``[min_lambd, n_points]`` (samples, differentiable)."""
        return self.lambd.abs().clamp(self.min_lambd, self.max_lambd)

    @torch.no_grad()
    def project_(self) -> None:
        """Put the raw parameter back inside the allowed range (call after an optimizer step)."""
        self.lambd.copy_(self.effective_lambd())

    def geometry(self) -> tuple[int, int]:
        """Current ``(win_length, n_fft)``."""
        return F.window_geometry(float(self.effective_lambd().detach()), self.n_points, self.window_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        lambd = self.effective_lambd().to(x.dtype)
        win_length, n_fft = self.geometry()
        window = F.gaussian_window(lambd, win_length, self.normalize_window)
        chunk = self.chunk_size
        if chunk is None:
            frames = x.shape[-1] // self.hop_length + 1
            chunk = max(1, CHUNK_ELEMENTS // (frames * n_fft))
        return F.power_spectrogram(x, window, n_fft, self.hop_length, chunk)


class DMEL(nn.Module):
    """Differentiable log-mel spectrogram: :class:`GaussianSpectrogram` -> mel -> ``log(. + 1e-10)``.

    Args:
        sample_rate: Hz.
        n_mels: mel bands.
        f_min, f_max: filterbank range in Hz (``f_max`` defaults to ``sample_rate / 2``).
        **spec_kwargs: passed to :class:`GaussianSpectrogram` (``init_lambd`` in samples, ...).

    The filterbank is built once per n_fft and cached. A warning names the number of empty
    filters the first time an n_fft gives fewer FFT bins than the mel bands need.
    Input ``(batch, n_points)``; output ``(batch, n_mels, n_points // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, n_mels: int = 64, f_min: float = 0.0, f_max: float | None = None,
                 **spec_kwargs):
        super().__init__()
        self.spectrogram = GaussianSpectrogram(**spec_kwargs)
        self.sample_rate, self.n_mels, self.f_min, self.f_max = sample_rate, n_mels, f_min, f_max
        self._fbanks: dict[tuple, torch.Tensor] = {}

    @property
    def lambd(self) -> nn.Parameter:
        return self.spectrogram.lambd

    def filterbank(self, n_fft: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (n_fft, device, dtype)
        if key not in self._fbanks:
            fb, n_empty = F.mel_filterbank(n_fft, self.n_mels, self.sample_rate, self.f_min, self.f_max)
            if n_empty:
                warnings.warn(
                    f"DMEL: {n_empty} of {self.n_mels} mel filters are empty at n_fft={n_fft} "
                    f"({n_fft // 2 + 1} FFT bins at {self.sample_rate} Hz); their log-mel rows are "
                    f"constant log(1e-10). Use fewer mels or a longer window.", stacklevel=2)
            self._fbanks[key] = fb.to(device=device, dtype=dtype)
        return self._fbanks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spectrogram(x)
        _, n_fft = self.spectrogram.geometry()
        return F.log_mel(spec, self.filterbank(n_fft, spec.device, spec.dtype))


class FixedMel(nn.Module):
    """Standard fixed front-end: torchaudio Hann ``MelSpectrogram`` (HTK, power 2) + ``log(. + 1e-10)``.

    Args:
        sample_rate: Hz.
        win_ms: Hann window length in milliseconds (n_fft is the next power of two).
        hop_length: hop in samples.
        n_mels: mel bands.
        remove_mean: subtract each example's mean first (as DMEL does).

    Input ``(batch, time)``; output ``(batch, n_mels, time // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, win_ms: float = 25.0, hop_length: int = 80, n_mels: int = 64,
                 remove_mean: bool = True):
        super().__init__()
        win_length = int(round(win_ms * sample_rate / 1000))
        self.remove_mean = remove_mean
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=F.next_power_of_2(win_length), win_length=win_length,
            hop_length=hop_length, n_mels=n_mels, power=2.0, center=True, pad_mode="constant",
            norm=None, mel_scale="htk")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        return torch.log(self.mel(x) + F.LOG_EPS)
