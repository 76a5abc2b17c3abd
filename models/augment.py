"""SpecAugment masks (torchaudio) as a layer that acts in training mode only, like dropout."""
from __future__ import annotations

import torch
import torchaudio
from torch import nn

from models.batch_augment import strength_masks


class SpecAugment(nn.Module):
    """One frequency mask of up to ``freq_mask`` bins and one time mask of up to ``time_mask`` frames,
    drawn independently per example (0 turns a mask off). Input ``(batch, freq, frames)`` or
    ``(batch, channels, freq, frames)``; identity in eval mode. With a per-example ``strength`` in [0, 1]
    (SapAugment) the widths are ``round(strength * widest)`` instead
    (:func:`models.batch_augment.strength_masks`)."""

    def __init__(self, freq_mask: int = 0, time_mask: int = 0):
        super().__init__()
        self.freq_mask, self.time_mask = freq_mask, time_mask
        masks = []
        if freq_mask:
            masks.append(torchaudio.transforms.FrequencyMasking(freq_mask, iid_masks=True))
        if time_mask:
            masks.append(torchaudio.transforms.TimeMasking(time_mask, iid_masks=True))
        self.masks = nn.Sequential(*masks)

    def forward(self, spec: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training or len(self.masks) == 0:
            return spec
        if strength is not None:
            return strength_masks(spec, strength, self.freq_mask, self.time_mask)
        four_d = spec if spec.dim() == 4 else spec.unsqueeze(1)
        out = self.masks(four_d)
        return out if spec.dim() == 4 else out.squeeze(1)
