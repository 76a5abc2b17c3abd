"""The front-end registry: one :class:`Frontend` record per ``frontend`` config value, registered beside
its builder with :func:`register_frontend` (torchvision's ``register_model`` pattern).

    @register_frontend("sincnet", label=lambda c: "SincNet", window_key="sinc_window_ms",
                       defaults={"sinc_window_ms": 16.0}, description="...")
    def build_sincnet(config, feature, n_points, sample_rate): ...

:mod:`models` imports every front-end module, so importing it fills the registry. The record is all
the harness knows about a front-end: the trial builds it, ``training.config`` takes its defaults, the
checks call its ``problems``, the figures call its ``label`` and ``initial_window_ms``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from torch import nn

from registry import Registry

FRONTENDS: Registry["Frontend"] = Registry("frontend", "a front-end registers itself with "
                                                       "models.registry.register_frontend; see docs/extending.md")
FEATURES = ("spec", "mel")  # what a front-end gives: a power spectrogram over FFT bins, or energies in bands

Builder = Callable[[dict, str, int, "int | None"], nn.Module]


@dataclass(frozen=True)
class Frontend:
    """What the harness needs to know about one front-end.

    Attributes:
        name: the ``frontend`` config value.
        build: ``(config, feature, n_points, sample_rate) -> nn.Module`` mapping ``(batch, n_points)``
            waveforms to ``(batch, freq, frames)`` (or ``(batch, channels, freq, frames)``); ``feature`` is
            one of its ``features``, ``sample_rate`` in Hz or ``None`` (the synthetic data).
        label: ``config -> str``, the front-end's short name in tables and figures (``config`` holds every
            key, defaults filled in).
        description: one line for ``main.py --list``.
        features: the outputs it can give, its preferred one first (see :data:`FEATURES`).
        window_key: the config key of its initial window in ms (``None``: give ``initial_window``).
        initial_window: ``(config, sample_rate) -> ms`` when the window is not one key (DMEL: 6 lambda).
        defaults: the config keys only this front-end reads, with their defaults (merged into
            ``training.config.DEFAULTS``; a key two front-ends share is declared by the first).
        own_compression: it ends in its own compression, so ``compression="pcen"`` is refused.
        needs_sample_rate: it cannot be built on data without a sample rate.
        problems: ``(config, sample_rate, n_points) -> list[str]``: one line per value it cannot take,
            checked before any trial starts (``tuning/validate.py``).
        drift: the names its ``drift()`` reports (each as ``frontend_<name>``): a tuple, or
            ``config -> tuple`` when they depend on the config (LEAF's compression); see :meth:`drift_names`.
    """

    name: str
    build: Builder
    label: Callable[[Mapping], str]
    description: str
    features: tuple[str, ...] = ("mel",)
    window_key: str | None = None
    initial_window: Callable[[Mapping, float], float] | None = None
    defaults: Mapping[str, object] = field(default_factory=dict)
    own_compression: bool = False
    needs_sample_rate: bool = True
    problems: Callable[[dict, "int | None", int], list[str]] | None = None
    drift: tuple[str, ...] | Callable[[Mapping], tuple[str, ...]] = ()

    def drift_names(self, config: Mapping) -> tuple[str, ...]:
        """The names the front-end built from ``config`` (defaults filled in) reports from ``drift()``."""
        return tuple(self.drift(config)) if callable(self.drift) else tuple(self.drift)

    def initial_window_ms(self, config: Mapping, sample_rate: float) -> float:
        """The initial window length in ms (``config`` with defaults filled in)."""
        if self.initial_window is not None:
            return float(self.initial_window(config, sample_rate))
        return float(config[self.window_key])


def register_frontend(name: str, **record) -> Callable[[Builder], Builder]:
    """Decorator: register the decorated builder as the front-end ``name`` (``record``: the other
    :class:`Frontend` fields). Returns the builder unchanged."""

    def register(build: Builder) -> Builder:
        FRONTENDS.register(name, Frontend(name=name, build=build, **record))
        return build

    return register


def list_frontends() -> tuple[str, ...]:
    """Every registered front-end name, in registration order."""
    return FRONTENDS.names()


def get_frontend(name: str) -> Frontend:
    """The record of ``name`` (an unknown name lists the known ones)."""
    return FRONTENDS.get(name)


def frontend_label(config: Mapping) -> str:
    """The short name of a resolved config's front-end in tables and figures: its record's ``label``, plus
    `` + PCEN`` when ``compression="pcen"`` replaces its log."""
    return get_frontend(config["frontend"]).label(config) + (" + PCEN" if config["compression"] == "pcen" else "")


def frontend_defaults() -> dict[str, object]:
    """Every front-end's own config keys and defaults (the first declaration of a shared key wins)."""
    out: dict[str, object] = {}
    for record in FRONTENDS.values():
        for key, value in record.defaults.items():
            out.setdefault(key, value)
    return out
