"""The experiment registry: one :class:`Experiment` record per ``main.py --name``, registered in
``search_spaces.py`` with :func:`register_experiment` on the function that returns its space.

    @register_experiment(gpu_share=1 / 8, figures="figures.time_frequency", full_epochs=10000)
    def time_frequency(max_epochs): ...

Nothing here imports Ray; :func:`load` imports ``search_spaces`` (which fills the registry).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable

from registry import Registry

EXPERIMENTS: Registry["Experiment"] = Registry("experiment", "an experiment registers itself in search_spaces.py with "
                                                             "@register_experiment; see docs/extending.md")
ALIASES: dict[str, str] = {}


@dataclass(frozen=True)
class Part:
    """One Tune run of an experiment of several: its search, scheduler and samples (``None``: ``--num_samples``)."""
    search: str = "grid"
    scheduler: str = "fifo"
    samples: int | None = None


@dataclass(frozen=True)
class Experiment:
    """What the harness needs to know about one experiment.

    Attributes:
        name: ``main.py --name``; results go to ``<storage>/<name>``.
        space: ``max_epochs -> param space`` (or ``{part: param space}`` for an experiment of ``parts``).
        description: one line for ``--list`` (the function's docstring, first line).
        gpu_share: a trial's GPU share on a cluster with GPUs (``--gpus_per_trial`` overrides it).
        parts: ``{part: Part}`` for an experiment of several Tune runs, run in order into ``<name>/<part>``.
        figures: the module under ``figures/`` whose ``produce`` turns it into figures and tables
            (``None``: the generic summary table of ``figures.generic``).
        full_epochs: ``max_epochs`` of the full run of ``run_experiments.sh``.
        full_samples: ``--num_samples`` of that run (``None``: ``NUM_SAMPLES``).
        budget_env: the variable that overrides ``full_epochs`` in ``run_experiments.sh``.
    """

    name: str
    space: Callable[[int], dict]
    description: str
    gpu_share: float
    parts: dict[str, Part] | None = None
    figures: str | None = None
    full_epochs: int = 100
    full_samples: int | None = None
    budget_env: str = "MAX_EPOCHS"

    def dataset(self) -> str:
        """The ``dataset_name`` its trials read (every part reads the same)."""
        space = self.space(1)
        first = next(iter(space.values())) if self.parts else space
        return first["dataset_name"]

    def trials_per_sample(self) -> int | None:
        """Trials one ``--num_samples`` repetition runs (the product of its grid axes; a searching part counts
        the trials it draws as one sample each); ``None`` for a part that draws ``--num_samples`` trials."""
        spaces = self.space(1)
        total = 0
        for part, space in (spaces.items() if self.parts else [(None, spaces)]):
            how = self.parts[part] if part else Part()
            if how.search != "grid":
                return None
            grid = math.prod(len(v["grid_search"]) for v in space.values() if isinstance(v, dict) and "grid_search" in v)
            total += grid * (how.samples or 1)
        return total


def register_experiment(gpu_share: float, figures: str | None = None, parts: dict[str, Part] | None = None,
                        aliases: tuple[str, ...] = (), **record) -> Callable:
    """Decorator: register the decorated ``max_epochs -> space`` function as the experiment of its name."""

    def register(space: Callable[[int], dict]) -> Callable[[int], dict]:
        doc = (space.__doc__ or "").strip().splitlines()
        EXPERIMENTS.register(space.__name__, Experiment(space.__name__, space, doc[0] if doc else "", gpu_share,
                                                        parts, figures, **record))
        for alias in aliases:
            ALIASES[alias] = space.__name__
        return space

    return register


def load() -> Registry["Experiment"]:
    """The registry, filled (``search_spaces`` imported)."""
    importlib.import_module("search_spaces")
    return EXPERIMENTS


def canonical_name(name: str) -> str:
    """``name`` with aliases resolved (the experiment folder is named after it)."""
    load()
    return ALIASES.get(name, name)


def get_experiment(name: str) -> Experiment:
    """The record of ``name`` or one of its aliases (an unknown name lists the known ones)."""
    return load().get(canonical_name(name))


def list_experiments() -> tuple[str, ...]:
    """Every registered experiment, in registration order."""
    return load().names()
