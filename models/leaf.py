"""LEAF and EfficientLEAF front-ends: thin ``nn.Module``s over :mod:`models.leaf_functional`.

* :class:`GaborFilterbank`: complex Gabor filters with learnable centre frequencies and bandwidths
  (initialised on the mel scale), squared modulus, Gaussian low-pass pooling with learnable widths.
  ``n_groups=None`` is LEAF's single full-rate convolution; an integer is EfficientLEAF's grouped,
  strided convolutions.
* :class:`Leaf`: :class:`GaborFilterbank` then :class:`models.pcen.PCEN` (sPCEN, log-space parameters).

References: Zeghidour et al., ICLR 2021 (LEAF); Schlueter & Gutenbrunner, EUSIPCO 2022 (EfficientLEAF).
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from models import frontend_functional as FF
from models import leaf_functional as LF
from models.pcen import PCEN_PARAMS, LogTBN, PCEN
from models.registry import register_frontend

LEAF_COMPRESSIONS = ("pcen", "log_tbn", "log_tbn_median")  # config["leaf_compression"]: sPCEN or EfficientLEAF's LogTBN
SIGMA_MIN = 4 * LF.FWHM_Z  # samples: LEAF's lower bandwidth bound (FWHM of at most a quarter of the rate)


def window_samples(window_ms: float, sample_rate: float) -> int:
    """``window_ms`` milliseconds in samples, made odd (so filters are centred)."""
    n = int(sample_rate * window_ms / 1000)
    return n + 1 - n % 2


class GaborFilterbank(nn.Module):
    """Learnable Gabor filterbank with Gaussian low-pass pooling: ``(batch, time)`` waveforms to
    ``(batch, n_filters, time // hop_length + 1)`` energies, frame ``j`` centred on sample ``j hop_length``.

    Args:
        n_filters: filters, initialised on ``n_filters`` HTK mel bands from ``f_min`` to ``f_max`` Hz
            (:func:`models.leaf_functional.mel_gabor_params`).
        sample_rate: Hz.
        window_size: samples (odd): LEAF's filter length and the pooling window.
        hop_length: samples between frames.
        n_groups: ``None`` for LEAF's geometry; an integer for EfficientLEAF's
            (:func:`models.leaf_functional.efficientleaf_groups`, with ``conv_win_factor`` and
            ``stride_factor``). The geometry is fixed from the initial parameters, so a forward pass
            never reads parameters back to the host and a resumed run computes the same function.
        pool_init: initial pooling width (std over half the window; 0.4 ~ a Hann window).

    Long inputs (music clips) are filtered a chunk of the batch at a time under activation
    checkpointing once a group's filter outputs would exceed ``max_batch_elements``
    (:func:`models.frontend_functional.checkpointed_over_batch`).

    Parameters, each ``(n_filters,)`` and clamped in value (straight-through gradient,
    :func:`models.leaf_functional.straight_through_clamp`) in the forward pass: ``center`` (radians per sample,
    in ``[0, pi]``), ``sigma`` (samples, in ``[4 z, window_size z]``, ``z = sqrt(2 ln 2) / pi``: LEAF's
    bandwidth bounds; mel bands narrower than the window allows start on the upper bound) and
    ``pool_width`` (in ``[2 / window_size, 0.5]``).
    """

    def __init__(self, n_filters: int, sample_rate: int, window_size: int, hop_length: int, f_min: float = 60.0,
                 f_max: float | None = None, n_groups: int | None = None, conv_win_factor: float = 6.0,
                 stride_factor: float = 16.0, pool_init: float = 0.4):
        super().__init__()
        if window_size % 2 == 0:
            raise ValueError(f"window_size={window_size} samples must be odd")
        self.window_size, self.hop_length = window_size, hop_length
        self.max_batch_elements = FF.MAX_BATCH_ELEMENTS  # filter outputs held at once (see checkpointed_over_batch)
        self.sigma_max = window_size * LF.FWHM_Z
        center, sigma = LF.mel_gabor_params(n_filters, sample_rate, f_min, f_max)
        center, sigma = center.clamp(0.0, math.pi), sigma.clamp(SIGMA_MIN, self.sigma_max)
        pool_width = torch.full((n_filters,), float(pool_init)).clamp(2 / window_size, 0.5)
        self.center, self.sigma, self.pool_width = nn.Parameter(center), nn.Parameter(sigma), nn.Parameter(pool_width)
        self.register_buffer("initial", torch.stack([center, sigma, pool_width]), persistent=False)  # (3, n_filters)
        self.groups = (LF.leaf_groups(n_filters, window_size, hop_length) if n_groups is None else
                       LF.efficientleaf_groups(center, sigma, n_groups, window_size, hop_length, conv_win_factor,
                                               stride_factor))

    def constrained(self) -> torch.Tensor:
        """``(3, n_filters)``: centre (rad/sample), sigma (samples) and pooling width within their bounds."""
        return torch.stack([LF.straight_through_clamp(self.center, 0.0, math.pi),
                            LF.straight_through_clamp(self.sigma, SIGMA_MIN, self.sigma_max),
                            LF.straight_through_clamp(self.pool_width, 2 / self.window_size, 0.5)])

    def drift(self) -> dict[str, float]:
        """Mean over filters of the relative change ``|p - p0| / p0`` of the centre frequency
        (``center_change``), the bandwidth (``bandwidth_change``, from sigma) and the pooling width
        (``pool_width_change``)."""
        change = ((self.constrained().detach() - self.initial).abs() / self.initial).mean(dim=1).tolist()
        return dict(zip(("center_change", "bandwidth_change", "pool_width_change"), change))

    @torch.no_grad()
    def export_learned(self) -> dict:
        """The constrained parameters the forward pass uses, ``(n_filters,)`` each: ``center_cycles``
        (centre frequency, cycles per sample: times the rate gives Hz), ``fwhm_cycles`` (the bandwidth,
        full width at half maximum, ``sqrt(2 ln 2) / (pi sigma)`` cycles per sample), ``sigma_samples``
        and ``pool_width`` (pooling std over half the window); scalars ``window_size`` and ``hop_length``
        (samples)."""
        center, sigma, width = self.constrained()
        return {"center_cycles": (center / (2 * math.pi)).cpu().numpy(),
                "fwhm_cycles": (LF.FWHM_Z / sigma).cpu().numpy(),
                "sigma_samples": sigma.cpu().numpy(), "pool_width": width.cpu().numpy(),
                "window_size": self.window_size, "hop_length": self.hop_length}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        center, sigma, width = self.constrained()
        n_frames = x.shape[-1] // self.hop_length + 1
        half = (self.window_size - 1) / 2
        out = []
        for g in self.groups:
            part = slice(g.start, g.stop)
            # pooling std in decimated samples; the gain conv_stride keeps the sum a full-rate one
            kernels = LF.gaussian_lowpass_kernels(width[part] * half / g.conv_stride, g.pool_size) * g.conv_stride

            def pooled(chunk: torch.Tensor, part=part, g=g, kernels=kernels) -> torch.Tensor:
                energy = LF.gabor_energy(chunk, center[part], sigma[part], g.kernel_size, g.conv_stride)
                return LF.lowpass_pool(energy, kernels, g.pool_stride, n_frames)

            # the filter outputs (real and imaginary parts at the group's rate) are bounded chunk by chunk
            per_example = 2 * (g.stop - g.start) * (x.shape[-1] // g.conv_stride + 1)
            out.append(FF.checkpointed_over_batch(pooled, x, per_example, self.max_batch_elements))
        return torch.cat(out, dim=1)


class Leaf(nn.Module):
    """LEAF (``n_groups=None``) or EfficientLEAF (``n_groups`` an integer): :class:`GaborFilterbank`,
    then ``compression``: ``"pcen"``, sPCEN (:class:`models.pcen.PCEN` with LEAF's initial values and
    input floor 1e-5), or ``"log_tbn"``/``"log_tbn_median"``, EfficientLEAF's :class:`models.pcen.LogTBN`
    (without or with the temporal median subtracted).

    Args:
        sample_rate: Hz.
        n_filters: output bands.
        window_ms: filter and pooling window, milliseconds (LEAF: 25).
        hop_length: samples between frames.
        compression: one of ``LEAF_COMPRESSIONS``.
        **filterbank_kwargs: :class:`GaborFilterbank`'s ``f_min``, ``f_max`` (Hz), ``n_groups``,
            ``conv_win_factor``, ``stride_factor``, ``pool_init``.

    Input ``(batch, time)``; output ``(batch, n_filters, time // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, n_filters: int = 40, window_ms: float = 25.0, hop_length: int = 160,
                 compression: str = "pcen", **filterbank_kwargs):
        super().__init__()
        if compression not in LEAF_COMPRESSIONS:
            raise ValueError(f"unknown leaf_compression {compression!r}; choose one of {LEAF_COMPRESSIONS}")
        self.filterbank = GaborFilterbank(n_filters, sample_rate, window_samples(window_ms, sample_rate), hop_length,
                                          **filterbank_kwargs)
        self.compression = (PCEN(n_filters, s=0.04, alpha=0.96, delta=2.0, r=0.5, floor=1e-5)
                            if compression == "pcen" else LogTBN(n_filters, median=compression == "log_tbn_median"))

    def drift(self) -> dict[str, float]:
        """:meth:`GaborFilterbank.drift` and the compression's (:meth:`models.pcen.PCEN.drift` or
        :meth:`models.pcen.LogTBN.drift`)."""
        return {**self.filterbank.drift(), **self.compression.drift()}

    def export_learned(self) -> dict:
        """:meth:`GaborFilterbank.export_learned` and the compression's, its keys prefixed ``pcen_`` or
        ``log_tbn_``."""
        prefix = "pcen_" if isinstance(self.compression, PCEN) else "log_tbn_"
        return {**self.filterbank.export_learned(),
                **{prefix + k: v for k, v in self.compression.export_learned().items()}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.compression(self.filterbank(x))


# leaf_compression -> the label's suffix (sPCEN, the default: none)
LEAF_COMPRESSION_NAMES = {"pcen": "", "log_tbn": " (log+TBN)", "log_tbn_median": " (log+TBN, median)"}


def leaf_drift(config: Mapping) -> tuple[str, ...]:
    """The names :meth:`LEAF.drift` reports: the filters', then its compression's (sPCEN's or LogTBN's)."""
    filters = ("center_change", "bandwidth_change", "pool_width_change")
    if config["leaf_compression"] == "pcen":
        return filters + tuple(f"pcen_{name}_change" for name in PCEN_PARAMS)
    return filters + ("log1p_a_change",)


@register_frontend(
    "leaf", label=lambda c: "LEAF" + LEAF_COMPRESSION_NAMES[c["leaf_compression"]], window_key="leaf_window_ms",
    own_compression=True, drift=leaf_drift,
    description="LEAF: learnable Gabor filters, Gaussian lowpass pooling and sPCEN",
    defaults={
        "leaf_compression": "pcen",   # leaf/efficientleaf: pcen (sPCEN, log-space parameters) | log_tbn: EfficientLEAF's log(1 + 10^a x), a per band, then temporal batch norm | log_tbn_median: the same less each band's temporal median
        "leaf_window_ms": 25.0,       # leaf/efficientleaf: Gabor filter and pooling window, ms (odd number of samples; LEAF: 25)
    })
def build_leaf(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """LEAF: ``n_mels`` Gabor filters of ``leaf_window_ms`` at the full rate, pooling every ``hop_length``, then
    ``leaf_compression`` (sPCEN by default)."""
    return Leaf(sample_rate, n_filters=config["n_mels"], window_ms=config["leaf_window_ms"],
                hop_length=config["hop_length"], compression=config["leaf_compression"])


def _efficientleaf_problems(config: dict, sample_rate: int | None, n_points: int) -> list[str]:
    """At most one filter group per filter."""
    if config["efficientleaf_groups"] > config["n_mels"]:
        return [f"efficientleaf_groups={config['efficientleaf_groups']!r}: more groups than the "
                f"n_mels={config['n_mels']} filters; use at most {config['n_mels']}"]
    return []


@register_frontend(
    "efficientleaf", label=lambda c: "EfficientLEAF" + LEAF_COMPRESSION_NAMES[c["leaf_compression"]],
    window_key="leaf_window_ms", own_compression=True, drift=leaf_drift, problems=_efficientleaf_problems,
    description="EfficientLEAF: LEAF's filters in groups of strided convolutions",
    defaults={
        "efficientleaf_groups": 8,    # efficientleaf: filter groups, each one strided convolution (EfficientLEAF "8G-opt": 8)
        "efficientleaf_stride_factor": 16.0,  # efficientleaf: a group's convolution stride, samples, is at most this times pi / its highest centre frequency (rad/sample); 1 = Nyquist (EfficientLEAF "opt": 16)
    })
def build_efficientleaf(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """EfficientLEAF: LEAF's filters in ``efficientleaf_groups`` groups, each a strided convolution
    (``efficientleaf_stride_factor``), then ``leaf_compression`` (sPCEN by default)."""
    return Leaf(sample_rate, n_filters=config["n_mels"], window_ms=config["leaf_window_ms"],
                hop_length=config["hop_length"], n_groups=config["efficientleaf_groups"],
                stride_factor=config["efficientleaf_stride_factor"], compression=config["leaf_compression"])
