"""SincNet front-end: learnable sinc band-pass filters, band energy pooled to the hop, log.

Ravanelli & Bengio, "Speaker recognition from raw waveform with SincNet", SLT 2018. The filters
are :func:`models.frontend_functional.sinc_bandpass_filters`; the parameterisation follows SincNet
(``low = min_low + |a|``, ``band = min_band + |b|``, mel-spaced initial bands) with the cut-offs
learned in cycles per sample (SincNet's first release; SpeechBrain's ``SincConv`` learns Hz, where
an Adam step of 1e-3 moves a cut-off by 1e-3 Hz) and clamped below Nyquist.
"""
from __future__ import annotations

import torch
from torch import nn

from models import frontend_functional as FF
from models import functional as F
from models.registry import register_frontend


class SincNet(nn.Module):
    """Sinc band-pass filterbank -> ``|.|^2`` averaged over ``2 hop_length`` samples every ``hop_length``
    -> ``log(. + 1e-10)``.

    Args:
        sample_rate: Hz.
        n_filters: band-pass filters (output rows).
        kernel_size: filter taps (odd; SincNet: 251 at 16 kHz).
        hop_length: samples between output frames.
        min_low_hz: floor of every low cut-off, Hz (SincNet: 50).
        min_band_hz: floor of every bandwidth, Hz (SincNet: 50).
        log: apply ``log(. + 1e-10)`` last (``False``: band power, for a learnable compression after it).
        remove_mean: subtract each example's mean first (as DMEL and FixedMel do).

    Learnable: ``low`` and ``band``, ``(n_filters,)`` each, in cycles per sample. The cut-offs are
    ``low_hz = min(min_low_hz + |low| sr, sr / 2 - min_band_hz)`` and
    ``high_hz = min(low_hz + min_band_hz + |band| sr, sr / 2)`` (straight-through clamps), so
    ``0 < low_hz < high_hz <= sr / 2`` and every band is at least ``min_band_hz`` wide whatever the
    parameters: no filter collapses or passes Nyquist. At initialisation the bands tile
    ``[min_low_hz, sr / 2]`` in equal mel steps.

    Input ``(batch, time)``; output ``(batch, n_filters, time // hop_length + 1)``. Long inputs (music
    clips) are filtered a chunk of the batch at a time under activation checkpointing once the
    full-rate outputs would exceed ``max_batch_elements`` (:func:`models.frontend_functional.checkpointed_over_batch`).
    """

    def __init__(self, sample_rate: int, n_filters: int = 64, kernel_size: int = 129, hop_length: int = 80,
                 min_low_hz: float = 50.0, min_band_hz: float = 50.0, log: bool = True, remove_mean: bool = True):
        super().__init__()
        nyquist = sample_rate / 2
        if kernel_size % 2 == 0 or kernel_size < 3:
            raise ValueError(f"SincNet needs an odd kernel_size >= 3, got {kernel_size}")
        if not 0 < min_low_hz < nyquist - min_band_hz or min_band_hz <= 0:
            raise ValueError(f"SincNet needs 0 < min_low_hz ({min_low_hz}) < sample_rate / 2 - min_band_hz "
                             f"({nyquist} - {min_band_hz}) and min_band_hz > 0")
        self.sample_rate, self.kernel_size, self.hop_length = sample_rate, kernel_size, hop_length
        self.min_low_hz, self.min_band_hz, self.log, self.remove_mean = min_low_hz, min_band_hz, log, remove_mean
        self.max_batch_elements = FF.MAX_BATCH_ELEMENTS  # full-rate outputs held at once (see checkpointed_over_batch)
        edges = FF.mel_band_edges(n_filters, min_low_hz, nyquist)
        low0 = (edges[:-1] - min_low_hz) / sample_rate
        band0 = ((edges[1:] - edges[:-1] - min_band_hz) / sample_rate).clamp(min=0)
        self.low = nn.Parameter(low0.float())
        self.band = nn.Parameter(band0.float())
        low_hz, high_hz = (t.detach().clone() for t in self.cutoffs_hz())
        self.register_buffer("low_hz_init", low_hz, persistent=False)
        self.register_buffer("width_hz_init", high_hz - low_hz, persistent=False)

    def cutoffs_hz(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low_hz, high_hz)``, ``(n_filters,)`` each, kept inside ``(0, sample_rate / 2]`` (see the class)."""
        nyquist = self.sample_rate / 2
        low = FF.straight_through_clamp(self.min_low_hz + self.low.abs() * self.sample_rate,
                                        high=nyquist - self.min_band_hz)
        high = FF.straight_through_clamp(low + self.min_band_hz + self.band.abs() * self.sample_rate, high=nyquist)
        return low, high

    def filters(self) -> torch.Tensor:
        """``(n_filters, kernel_size)`` band-pass filters at the current cut-offs."""
        low, high = self.cutoffs_hz()
        return FF.sinc_bandpass_filters(low, high, self.kernel_size, self.sample_rate)

    def drift(self) -> dict[str, float]:
        """Relative change from initialisation of the low cut-offs (Hz) and of the bandwidths (Hz), each
        ``||now - init|| / ||init||`` over the filters (both norms are positive: the floors)."""
        low_hz, high_hz = self.cutoffs_hz()
        return {"sinc_low_change": FF.relative_change(low_hz, self.low_hz_init),
                "sinc_band_change": FF.relative_change(high_hz - low_hz, self.width_hz_init)}

    @torch.no_grad()
    def export_learned(self) -> dict:
        """The cut-offs the forward pass uses, ``(n_filters,)`` each: ``low_hz``, ``high_hz``, ``center_hz``
        (their mean), ``band_hz`` (``high_hz - low_hz``); the ``filters`` ``(n_filters, kernel_size)``; scalars
        ``kernel_size``, ``hop_length`` (samples) and ``sample_rate`` (Hz)."""
        low, high = self.cutoffs_hz()
        return {"low_hz": low.cpu().numpy(), "high_hz": high.cpu().numpy(),
                "center_hz": ((low + high) / 2).cpu().numpy(), "band_hz": (high - low).cpu().numpy(),
                "filters": self.filters().cpu().numpy(), "kernel_size": self.kernel_size,
                "hop_length": self.hop_length, "sample_rate": self.sample_rate}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        filters = self.filters().to(x.dtype).unsqueeze(1)

        def band_energy(chunk: torch.Tensor) -> torch.Tensor:  # (chunk, time) -> (chunk, n_filters, frames)
            y = torch.nn.functional.conv1d(chunk.unsqueeze(1), filters, padding=self.kernel_size // 2)
            return FF.pooled_energy(y, self.hop_length)

        # the full-rate filter outputs, (batch, n_filters, time), are bounded by recomputing them chunk by chunk
        energy = FF.checkpointed_over_batch(band_energy, x, len(filters) * x.shape[-1], self.max_batch_elements)
        return torch.log(energy + F.LOG_EPS) if self.log else energy


@register_frontend(
    "sincnet", label=lambda c: "SincNet", window_key="sinc_window_ms", drift=("sinc_low_change", "sinc_band_change"),
    description="SincNet: n_mels learnable sinc band-pass filters (low cut-off and bandwidth in Hz)",
    defaults={
        "sinc_window_ms": 16.0,       # sincnet: band-pass filter length, ms (rounded to an odd number of taps; SincNet: 251 taps at 16 kHz)
    })
def build_sincnet(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """SincNet: ``n_mels`` sinc band-pass filters of ``sinc_window_ms`` (odd taps), energy every ``hop_length``."""
    kernel_size = int(round(config["sinc_window_ms"] * sample_rate / 1000)) // 2 * 2 + 1
    return SincNet(sample_rate, n_filters=config["n_mels"], kernel_size=kernel_size,
                   hop_length=config["hop_length"], log=config["compression"] == "log")
