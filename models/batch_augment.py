"""Batch augmentation of the head's input (training only): CutMix and strength-driven SpecAugment masks.

**CutMix** (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features", ICCV 2019), as DeepSpectrumLite applies it to spectrogram images
(``AugmentableModel.cutmix``, github.com/DeepSpectrum/DeepSpectrumLite,
``src/deepspectrumlite/lib/model/modules/augmentable_model.py``): each example, with probability
``p``, gets a **square** patch of another example of the batch pasted at a random centre. The side is

    side = round((min_share + (max_share - min_share) * strength) * min(freq, frames))

with ``strength`` in [0, 1] (SapAugment's per-example strength, or uniform at random without it).
DeepSpectrumLite takes the share of its (square, 224 x 224) image's side; our spectrograms are not
square, so the share is of the shorter axis. The patch covers rows ``[c - side // 2, c - side // 2 + side)``
around a centre ``c`` drawn uniformly over the axis, clipped at the border. The labels are mixed by the
pasted area share ``lam = clipped patch area / (freq * frames)``, exactly (DeepSpectrumLite uses
``side ** 2`` even when the patch is clipped; the CutMix reference code uses the clipped box, as here).
The partner of each example comes from a random permutation of the batch (DeepSpectrumLite draws a
partner index per example, with repeats); a fixed point pastes an example onto itself.

**Strength masks**: SpecAugment's frequency and time masks with a per-example width
``round(strength * widest)`` (``widest``: ``specaugment_freq`` bins / ``specaugment_time`` frames) at a
uniform position, filled with 0 as torchaudio's masks are; what SapAugment drives instead of torchaudio's
uniform widths.

Every draw comes from torch's global generator of the spectrogram's device (the trial seeds and
checkpoints it), so augmented runs repeat and resume exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Mix:
    """What CutMix did to a batch: example ``i`` holds a patch of example ``perm[i]``, covering ``lam[i]`` of
    its image; ``boxes[i] = (f0, f1, t0, t1)``, rows ``f0:f1`` and frames ``t0:t1`` (empty when not cut)."""
    perm: torch.Tensor   # (batch,) long
    lam: torch.Tensor    # (batch,) float, the pasted area share
    boxes: torch.Tensor  # (batch, 4) long


def cutmix_sides(strength: torch.Tensor, size: int, min_share: float, max_share: float) -> torch.Tensor:
    """Patch sides, in bins: ``round((min_share + (max_share - min_share) * strength) * size)``, long."""
    return torch.round((min_share + (max_share - min_share) * strength) * size).long()


def draw_boxes(sides: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Square boxes of ``sides`` (long, ``(batch,)``) at uniform centres, clipped to the ``height x width``
    image: ``(batch, 4)`` long ``(f0, f1, t0, t1)``. A side of 0 is an empty box."""
    n, device = len(sides), sides.device
    cf = torch.floor(torch.rand(n, device=device) * height).long()
    ct = torch.floor(torch.rand(n, device=device) * width).long()
    f0, t0 = cf - sides // 2, ct - sides // 2
    return torch.stack([f0.clamp(0, height), (f0 + sides).clamp(0, height),
                        t0.clamp(0, width), (t0 + sides).clamp(0, width)], dim=1)


def box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(batch, height, width)`` booleans, True inside each example's box."""
    rows = torch.arange(height, device=boxes.device)
    cols = torch.arange(width, device=boxes.device)
    inside_f = (rows >= boxes[:, :1]) & (rows < boxes[:, 1:2])
    inside_t = (cols >= boxes[:, 2:3]) & (cols < boxes[:, 3:4])
    return inside_f[:, :, None] & inside_t[:, None, :]


def paste(spec: torch.Tensor, perm: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Example ``i`` with ``spec[perm[i]]`` inside its box; ``spec`` ``(batch, freq, frames)`` or
    ``(batch, channels, freq, frames)`` (every channel alike). Returns ``(mixed, lam)``, ``lam`` the box's
    area over the image's."""
    height, width = spec.shape[-2:]
    mask = box_masks(boxes, height, width)
    if spec.dim() == 4:
        mask = mask[:, None]
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    return torch.where(mask, spec[perm], spec), area.to(spec.dtype) / (height * width)


class CutMix(nn.Module):
    """CutMix of a batch of spectrograms, per example with probability ``p``; the patch side between
    ``min_share`` and ``max_share`` of the shorter axis, set by ``strength`` (uniform at random when
    ``None``). Call in training only (the caller's :meth:`models.classifiers.Classifier.train_forward`)."""

    def __init__(self, p: float = 0.5, min_share: float = 0.075, max_share: float = 0.25):
        super().__init__()
        self.p, self.min_share, self.max_share = p, min_share, max_share

    def forward(self, spec: torch.Tensor, strength: torch.Tensor | None = None) -> tuple[torch.Tensor, Mix]:
        n, device = spec.shape[0], spec.device
        height, width = spec.shape[-2:]
        perm = torch.randperm(n, device=device)
        applied = torch.rand(n, device=device) < self.p
        if strength is None:
            strength = torch.rand(n, device=device)
        sides = cutmix_sides(strength, min(height, width), self.min_share, self.max_share) * applied
        boxes = draw_boxes(sides, height, width)
        mixed, lam = paste(spec, perm, boxes)
        return mixed, Mix(perm, lam, boxes)


def band_masks(strength: torch.Tensor, widest: int, size: int) -> torch.Tensor:
    """``(batch, size)`` booleans: one band of ``round(strength * widest)`` (at most ``size``) positions per
    example, starting uniformly in ``[0, size - width]``."""
    width = torch.round(strength * widest).long().clamp(0, size)
    start = torch.floor(torch.rand(len(strength), device=strength.device) * (size - width + 1)).long()
    idx = torch.arange(size, device=strength.device)
    return (idx >= start[:, None]) & (idx < (start + width)[:, None])


def strength_masks(spec: torch.Tensor, strength: torch.Tensor, freq_mask: int, time_mask: int) -> torch.Tensor:
    """One frequency mask of ``round(strength * freq_mask)`` bins and one time mask of
    ``round(strength * time_mask)`` frames per example (0: none), set to 0; ``spec`` 3-D or 4-D."""
    height, width = spec.shape[-2:]
    drop = torch.zeros(spec.shape[0], height, width, dtype=torch.bool, device=spec.device)
    if freq_mask:
        drop = drop | band_masks(strength, freq_mask, height)[:, :, None]
    if time_mask:
        drop = drop | band_masks(strength, time_mask, width)[:, None, :]
    if spec.dim() == 4:
        drop = drop[:, None]
    return spec.masked_fill(drop, 0.0)
