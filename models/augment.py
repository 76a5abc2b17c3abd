"""SpecAugment masks (torchaudio) as a layer that acts in training mode only, like dropout."""
from __future__ import annotations

import torch
import torchaudio
from torch import nn


class SpecAugment(nn.Module):
    """One frequency mask of up to ``freq_mask`` bins and one time mask of up to ``time_mask`` frames,
    drawn independently per example (0 turns a mask off). Input ``(batch, freq, frames)`` or
    ``(batch, channels, freq, frames)``; identity in eval mode."""

    def __init__(self, freq_mask: int = 0, time_mask: int = 0):
        super().__init__()
        masks = []
        if freq_mask:
            masks.append(torchaudio.transforms.FrequencyMasking(freq_mask, iid_masks=True))
        if time_mask:
            masks.append(torchaudio.transforms.TimeMasking(time_mask, iid_masks=True))
        self.masks = nn.Sequential(*masks)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if not self.training or len(self.masks) == 0:
            return spec
        four_d = spec if spec.dim() == 4 else spec.unsqueeze(1)
        out = self.masks(four_d)
        return out if spec.dim() == 4 else out.squeeze(1)
