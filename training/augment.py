"""Waveform augmentation for training batches, from torch-audiomentations.

Random gain (-6 to +6 dB), coloured noise (SNR 10-40 dB, spectral slope -2 to 2) and a delay
(a shift of up to 10 % of the segment, zero-filled, not rolled over), each applied to an
example with probability 0.5. Draws come from torch's global generator, which the trial seeds
and checkpoints, so augmented runs are reproducible and resume exactly.
"""
from __future__ import annotations

import torch
from torch_audiomentations import AddColoredNoise, Compose, Gain, Shift


class WaveformAugment:
    """Callable on ``(batch, time)`` waveforms at ``sample_rate`` Hz; returns the same shape."""

    def __init__(self, sample_rate: int, p: float = 0.5):
        self.sample_rate = sample_rate
        self.transform = Compose([
            Gain(min_gain_in_db=-6.0, max_gain_in_db=6.0, p=p, output_type="dict"),
            AddColoredNoise(min_snr_in_db=10.0, max_snr_in_db=40.0, p=p, sample_rate=sample_rate,
                            output_type="dict"),
            Shift(min_shift=0.0, max_shift=0.1, rollover=False, p=p, sample_rate=sample_rate, output_type="dict"),
        ], output_type="dict")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x.unsqueeze(1), sample_rate=self.sample_rate).samples.squeeze(1)


def build_waveform_augment(config: dict, sample_rate: int | None) -> WaveformAugment | None:
    """The augmentation ``config["augment_waveform"]`` asks for, or ``None``; with ``sapaugment`` its
    per-example-strength version (:class:`training.sapaugment.SapWaveformAugment`)."""
    if not config["augment_waveform"]:
        return None
    if not sample_rate:
        raise ValueError("augment_waveform needs audio with a sample rate (not the synthetic data)")
    if config.get("sapaugment"):  # the same ops, each example's strength from SapAugment (training/sapaugment.py)
        from training.sapaugment import SapWaveformAugment

        return SapWaveformAugment(sample_rate)
    return WaveformAugment(sample_rate)
