"""Trainable mel filterbank (nnAudio-style): a fixed Hann power STFT, then a filterbank matrix that
starts at the HTK mel filterbank and is learned, then log.

nnAudio's ``MelSpectrogram(trainable_mel=True)`` learns the same matrix (Cheuk et al., "nnAudio",
IEEE Access 2020). This module computes the STFT with torchaudio, exactly as :class:`FixedMel`
does, so at initialisation its output is FixedMel's; the learned weights are kept non-negative.
"""
from __future__ import annotations

import torch
import torchaudio
from torch import nn

from models import frontend_functional as FF
from models import functional as F
from models.frontends import checked_filterbank
from models.registry import register_frontend


class TrainableMel(nn.Module):
    """torchaudio Hann power spectrogram -> learnable ``(n_fft // 2 + 1, n_mels)`` filterbank -> ``log(. + 1e-10)``.

    Args:
        sample_rate: Hz.
        win_ms: Hann window length in milliseconds (n_fft is the next power of two), as FixedMel.
        hop_length: samples.
        n_mels: filters (output rows).
        log: apply ``log(. + 1e-10)`` last (``False``: mel power, for a learnable compression after it).
        remove_mean: subtract each example's mean first (as FixedMel).

    Learnable: ``filterbank``, initialised at :func:`models.functional.mel_filterbank` (HTK, no
    normalisation, 0 Hz to ``sample_rate / 2``). It is used as ``max(filterbank, 0)`` with the
    identity's gradient (:func:`models.frontend_functional.straight_through_clamp`): the mel energy
    is never negative, so the log stays finite, and a weight held at zero still gets a gradient
    (a filter's support can grow).

    Input ``(batch, time)``; output ``(batch, n_mels, time // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, win_ms: float = 25.0, hop_length: int = 80, n_mels: int = 64,
                 log: bool = True, remove_mean: bool = True):
        super().__init__()
        win_length = int(round(win_ms * sample_rate / 1000))
        n_fft = F.next_power_of_2(win_length)
        self.log, self.remove_mean = log, remove_mean
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, win_length=win_length, hop_length=hop_length, power=2.0, center=True,
            pad_mode="constant")
        fb = checked_filterbank("TrainableMel", n_fft, n_mels, sample_rate)
        self.filterbank = nn.Parameter(fb)
        self.register_buffer("filterbank_init", fb.clone(), persistent=False)

    def effective_filterbank(self) -> torch.Tensor:
        """``(n_fft // 2 + 1, n_mels)`` non-negative weights the forward pass uses."""
        return FF.straight_through_clamp(self.filterbank, low=0.0)

    def drift(self) -> dict[str, float]:
        """``filterbank_change``: ``||W - W0|| / ||W0||`` of the effective filterbank against the mel one."""
        return {"filterbank_change": FF.relative_change(self.effective_filterbank(), self.filterbank_init)}

    @torch.no_grad()
    def export_learned(self) -> dict:
        """``filterbank`` ``(n_fft // 2 + 1, n_mels)``: the non-negative weights the forward pass uses;
        ``window`` ``(win_length,)``: the fixed Hann window of the STFT; scalars ``n_fft``, ``win_length``,
        ``hop_length`` (samples) and ``n_mels``."""
        fb = self.effective_filterbank()
        stft = self.spectrogram
        return {"filterbank": fb.cpu().numpy(), "window": stft.window.cpu().numpy(), "n_fft": stft.n_fft,
                "win_length": stft.win_length, "hop_length": stft.hop_length, "n_mels": int(fb.shape[1])}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        mel = F.apply_filterbank(self.spectrogram(x), self.effective_filterbank())
        return torch.log(mel + F.LOG_EPS) if self.log else mel


@register_frontend(
    "trainable_mel", label=lambda c: "trainable mel", window_key="fixed_win_ms", drift=("filterbank_change",),
    description="a Hann STFT (fixed_win_ms) with a learnable mel filterbank")
def build_trainable_mel(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """FixedMel's Hann STFT (``fixed_win_ms``, declared by ``torchaudio_mel``) with a learnable mel filterbank."""
    return TrainableMel(sample_rate, win_ms=config["fixed_win_ms"], hop_length=config["hop_length"],
                        n_mels=config["n_mels"], log=config["compression"] == "log")
