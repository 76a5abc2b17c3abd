"""Learnable PCEN: the compression after a spectrogram (``compression="pcen"``) and inside LEAF.

* :class:`PCEN`: per-band smoothing coefficient ``s``, exponent ``alpha``, offset ``delta`` and root
  ``r``, each learned as its natural logarithm (as EfficientLEAF, after LEAF's linear-space
  parameters went NaN on long inputs: a negative ``delta`` makes the root of a negative number).
* :class:`PCENCompressed`: any front-end whose output is a non-negative ``(..., bands, frames)``
  energy, followed by :class:`PCEN`.
* :class:`LogTBN`: EfficientLEAF's cheaper alternative to PCEN, ``log(1 + 10^a E)`` with ``a`` learned per
  band, optionally less each band's temporal median, then temporal batch normalisation.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from models import interface
from models import leaf_functional as LF

PCEN_PARAMS = ("s", "alpha", "delta", "r")


class PCEN(nn.Module):
    """``(E / (eps + M)^alpha + delta)^r - delta^r`` with ``M`` the IIR smoother of ``E``
    (:func:`models.leaf_functional.ema_smoother`, :func:`models.leaf_functional.pcen`).

    Args:
        n_bands: bands (the ``-2`` axis of the input); every parameter is per band.
        s, alpha, delta, r: initial values (LEAF's sPCEN: 0.04, 0.96, 2, 0.5).
        eps: added to the smoother before its power.
        floor: the input is clamped at this minimum first (LEAF: 1e-5), ``None`` for no clamp.

    Parameters ``log_s``, ``log_alpha``, ``log_delta``, ``log_r`` ``(n_bands,)``: natural logs, so every
    value stays positive. ``s``, ``alpha`` and ``r`` are capped at 1 in value (LEAF's constraints: a
    stable smoother, and no gain or root that overflows float32; straight-through gradient, so a capped
    parameter can come back); ``delta`` is free.
    Input ``(..., n_bands, frames)``, non-negative; output the same shape.
    """

    def __init__(self, n_bands: int, s: float = 0.04, alpha: float = 0.96, delta: float = 2.0, r: float = 0.5,
                 eps: float = 1e-12, floor: float | None = None):
        super().__init__()
        init = {"s": s, "alpha": alpha, "delta": delta, "r": r}
        for name, value in init.items():
            if not value > 0 or (name != "delta" and value > 1):
                raise ValueError(f"PCEN {name}={value} must be in (0, 1]" if name != "delta"
                                 else f"PCEN delta={value} must be positive")
            setattr(self, f"log_{name}", nn.Parameter(torch.full((n_bands,), math.log(value))))
        self.n_bands, self.eps, self.floor = n_bands, eps, floor
        self.register_buffer("initial", self.log_params().detach().clone(), persistent=False)  # (4, n_bands)

    def log_params(self) -> torch.Tensor:
        """The effective log-parameters ``(4, n_bands)`` in ``PCEN_PARAMS`` order, caps applied."""
        cap = LF.straight_through_clamp
        return torch.stack([cap(self.log_s, high=0.0), cap(self.log_alpha, high=0.0), self.log_delta,
                            cap(self.log_r, high=0.0)])

    def drift(self) -> dict[str, float]:
        """``pcen_<name>_change``: mean over bands of ``|ln(p / p0)|`` for ``s``, ``alpha``, ``delta``, ``r``."""
        change = (self.log_params().detach() - self.initial).abs().mean(dim=1).tolist()
        return {f"pcen_{name}_change": value for name, value in zip(PCEN_PARAMS, change)}

    @torch.no_grad()
    def export_learned(self) -> dict:
        """``s``, ``alpha``, ``delta``, ``r`` ``(n_bands,)``: the values the forward pass uses (caps applied);
        scalars ``eps`` and ``floor`` (``nan``: no floor)."""
        values = self.log_params().exp().cpu().numpy()
        return {**dict(zip(PCEN_PARAMS, values)), "eps": self.eps,
                "floor": math.nan if self.floor is None else self.floor}

    def forward(self, energy: torch.Tensor) -> torch.Tensor:
        if energy.shape[-2] != self.n_bands:
            raise ValueError(f"PCEN built for {self.n_bands} bands got input of shape {tuple(energy.shape)}")
        if self.floor is not None:
            energy = energy.clamp(min=self.floor)
        s, alpha, delta, r = self.log_params().exp()
        return LF.pcen(energy, LF.ema_smoother(energy, s), alpha, delta, r, self.eps)


class PCENCompressed(nn.Module):
    """``frontend`` (built without its log) followed by :class:`PCEN` over its ``n_bands`` bands.

    ``drift()`` merges the front-end's own ``drift()`` (if any) with PCEN's.
    Input ``(batch, time)``; output the front-end's shape ``(..., n_bands, frames)``.
    """

    def __init__(self, frontend: nn.Module, n_bands: int, **pcen_kwargs):
        super().__init__()
        self.frontend, self.pcen = frontend, PCEN(n_bands, **pcen_kwargs)

    def drift(self) -> dict[str, float]:
        return {**interface.drift(self.frontend), **self.pcen.drift()}

    def learning_rate_groups(self, config: dict) -> list[tuple[list[nn.Parameter], float]]:
        """The front-end's own groups, then PCEN's parameters (see :mod:`models.interface`)."""
        return (interface.learning_rate_groups(self.frontend, config)
                + interface.default_learning_rate_groups(self.pcen.parameters(), config))

    def after_step(self) -> None:
        interface.after_step(self.frontend)

    def epoch_metrics(self, sample_rate: int | None) -> dict[str, float]:
        return interface.epoch_metrics(self.frontend, sample_rate)

    def export_learned(self) -> dict:
        """The front-end's ``export_learned()`` (else its parameters and buffers by name) and PCEN's
        :meth:`PCEN.export_learned`, prefixed ``pcen_``."""
        own = getattr(self.frontend, "export_learned", None)
        inner = own() if own is not None else {name: t.detach().cpu().numpy() for name, t in
                                                 [*self.frontend.named_parameters(), *self.frontend.named_buffers()]}
        return {**inner, **{f"pcen_{k}": v for k, v in self.pcen.export_learned().items()}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pcen(self.frontend(x))


class LogTBN(nn.Module):
    """``TBN(log(1 + 10^a E) - median_t)``: EfficientLEAF's compression (Schlueter & Gutenbrunner 2022).

    ``a`` ``(n_bands,)`` is learned per band from 0 (``log1p`` of the energy at the start). With
    ``median``, each example's band loses its temporal median (``torch.median``: the lower of the two
    middle values for an even number of frames). TBN is ``nn.BatchNorm1d`` over the bands: each band is
    normalised over the batch and the frames, with a learned scale and shift (running statistics in
    evaluation mode).

    Input ``(..., n_bands, frames)``, non-negative; output the same shape.
    """

    def __init__(self, n_bands: int, median: bool = False):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(n_bands))
        self.median, self.norm = median, nn.BatchNorm1d(n_bands)

    def drift(self) -> dict[str, float]:
        """``log1p_a_change``: mean over bands of ``|a - 0|`` (``a`` starts at 0)."""
        return {"log1p_a_change": float(self.a.detach().abs().mean())}

    @torch.no_grad()
    def export_learned(self) -> dict:
        """``a`` ``(n_bands,)``; the batch norm's ``weight``, ``bias``, ``running_mean`` and ``running_var``
        ``(n_bands,)``; scalars ``eps`` and ``median`` (1: the temporal median is subtracted)."""
        norm = self.norm
        return {"a": self.a.cpu().numpy(), "weight": norm.weight.cpu().numpy(), "bias": norm.bias.cpu().numpy(),
                "running_mean": norm.running_mean.cpu().numpy(), "running_var": norm.running_var.cpu().numpy(),
                "eps": norm.eps, "median": bool(self.median)}

    def forward(self, energy: torch.Tensor) -> torch.Tensor:
        if energy.shape[-2] != self.a.numel():
            raise ValueError(f"LogTBN built for {self.a.numel()} bands got input of shape {tuple(energy.shape)}")
        y = torch.log1p(torch.pow(10.0, self.a)[:, None] * energy)
        if self.median:
            y = y - y.median(dim=-1, keepdim=True).values
        return self.norm(y.reshape(-1, *y.shape[-2:])).reshape(y.shape)
