"""Spectrograms rendered as colour images for an ImageNet CNN, differentiably (DeepSpectrumLite's plots).

The steps, each a pure function, in DeepSpectrumLite's order (``data_pipeline.py``, ``generate_spectrogram``):

1. :func:`db_scale`: the front-end's log energies in dB (``image_db=True``), or back to linear energies.
2. :func:`min_max`: each example to ``[0, 1]`` by its own minimum and maximum.
3. :func:`apply_colormap`: a matplotlib colour map as a lookup table, linearly interpolated between its
   entries (so the image has a gradient with respect to the spectrogram: a learnable front-end learns
   through it); low frequencies at the bottom of the image, as the plot shows them.
4. :func:`resize`: bilinear, anti-aliased, to ``image_height x image_width`` (PIL's filter; torch's
   ``antialias=True``).
5. :func:`normalize`: the mean and standard deviation the CNN's ImageNet weights were trained with.

:class:`SpectrogramImage` chains them: ``(batch, freq, frames)`` -> ``(batch, 3, image_height, image_width)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

COLORMAPS = ("viridis", "cividis", "inferno", "magma", "plasma")  # DeepSpectrumLite's; any matplotlib name works
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet weights (every classification model's transforms)
IMAGENET_STD = (0.229, 0.224, 0.225)


def colormap_table(name: str) -> torch.Tensor:
    """``(N, 3)`` float32 RGB entries in ``[0, 1]`` of matplotlib's colour map ``name`` (``N`` = its size,
    256 for the five of :data:`COLORMAPS`). Raises ``ValueError`` for a name matplotlib does not know."""
    import matplotlib

    if name not in matplotlib.colormaps:
        raise ValueError(f"image_colormap={name!r}: not a matplotlib colour map; use one of {', '.join(COLORMAPS)}")
    cmap = matplotlib.colormaps[name]
    return torch.from_numpy(cmap(np.linspace(0.0, 1.0, cmap.N))[:, :3].astype(np.float32))


def db_scale(log_spec: torch.Tensor, db: bool = True) -> torch.Tensor:
    """The front-end's natural-log energies ``log(E)`` in dB, ``10 log10(E)`` (``db=True``: librosa's
    ``power_to_db`` with ``ref=1``, ``top_db=None``, the front-end's own floor instead of ``amin``), or the
    linear energies ``E`` (``db=False``, DeepSpectrumLite's ``db_scale=False``)."""
    return log_spec * (10.0 / math.log(10.0)) if db else torch.exp(log_spec)


def min_max(spec: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Each example of ``(batch, ...)`` scaled to ``[0, 1]`` by its own minimum and maximum (a constant
    example becomes zeros)."""
    dims = tuple(range(1, spec.dim()))
    low = spec.amin(dim=dims, keepdim=True)
    high = spec.amax(dim=dims, keepdim=True)
    return (spec - low) / (high - low).clamp_min(eps)


def apply_colormap(values: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``(batch, freq, frames)`` values in ``[0, 1]`` -> ``(batch, 3, freq, frames)`` RGB, by linear
    interpolation between the ``(N, 3)`` entries of ``table`` (value ``k / (N - 1)`` is entry ``k``), with
    the frequency axis flipped so row 0 is the highest band (an image's top)."""
    n = table.shape[0]
    position = values.clamp(0.0, 1.0) * (n - 1)
    low = position.detach().floor().clamp(max=n - 2).long()
    frac = (position - low).unsqueeze(-1)                       # (batch, freq, frames, 1)
    rgb = table[low] * (1.0 - frac) + table[low + 1] * frac    # (batch, freq, frames, 3)
    return rgb.permute(0, 3, 1, 2).flip(-2)


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(batch, 3, h, w)`` -> ``(batch, 3, height, width)``, bilinear and anti-aliased (as PIL's
    ``Image.resize(..., BILINEAR)``, DeepSpectrumLite's ``tf.image.resize(..., antialias=True)``)."""
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def normalize(image: torch.Tensor, mean: tuple[float, ...] = IMAGENET_MEAN,
              std: tuple[float, ...] = IMAGENET_STD) -> torch.Tensor:
    """``(image - mean) / std`` per RGB channel of ``(batch, 3, h, w)`` (torchvision's ``Normalize``)."""
    m = image.new_tensor(mean).view(1, -1, 1, 1)
    s = image.new_tensor(std).view(1, -1, 1, 1)
    return (image - m) / s


class SpectrogramImage(nn.Module):
    """A front-end's log spectrogram as the normalised colour image an ImageNet CNN reads.

    Args:
        colormap: a matplotlib colour map name (:data:`COLORMAPS`).
        height, width: the image's size in pixels.
        db: dB (``True``) or linear energies (``False``) before the min-max scaling (:func:`db_scale`).

    Input ``(batch, freq, frames)`` natural-log energies, output ``(batch, 3, height, width)``; every step
    is differentiable with respect to the input. The colour table is a buffer (it moves with the module).
    """

    def __init__(self, colormap: str = "viridis", height: int = 224, width: int = 224, db: bool = True):
        super().__init__()
        self.register_buffer("table", colormap_table(colormap), persistent=False)
        self.height, self.width, self.db = int(height), int(width), bool(db)

    def forward(self, log_spec: torch.Tensor) -> torch.Tensor:
        values = min_max(db_scale(log_spec.float(), self.db))
        return normalize(resize(apply_colormap(values, self.table), self.height, self.width))
