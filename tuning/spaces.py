"""Assemble the param space of a named experiment: ``--set`` overrides, grid axes, distributions and parts.

Pure: nothing here starts or needs a running Ray (``ray.tune`` is imported for its space objects,
``tune.grid_search`` and the distributions); :mod:`tuning.runner` runs what this builds.

How the space is explored (:class:`Search`): ``grid`` runs every combination of the ``grid_search`` axes,
``num_samples`` times (seeds ``0..num_samples-1``, a grid axis); ``random`` (Tune's random sampler) and
``optuna`` (TPE through Ray's ``OptunaSearch``) draw ``num_samples`` trials from the space's distributions
(``tune.loguniform``, ``tune.uniform``, ``tune.choice``, ...), every trial with the space's one ``seed``. A
searched space may not have grid axes (Ray cannot mix ``grid_search`` with a searcher): that is a
:class:`ConfigError` naming them. The scheduler ``asha`` stops trials whose ``best_valid_loss`` (the loss the
trial selects its best epoch by) trails at a rung; ``fifo`` lets every trial run to its end.

An experiment may have parts (its record's ``parts``, :mod:`tuning.experiments`): several Tune runs, each in ``<name>/<part>``,
started in order by one command (:func:`build_parts`).
"""
from __future__ import annotations

import ast
import difflib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ray import tune
from ray.tune.search.sample import Categorical, Domain

from training.config import is_variant, resolve_config
from training.segments import n_segments
from tuning.experiments import canonical_name, get_experiment

SEARCHES = ("grid", "random", "optuna")
SCHEDULERS = ("fifo", "asha")


class ConfigError(ValueError):
    """A user mistake in the command line or search space; the message says what to do."""


@dataclass(frozen=True)
class Search:
    """How one Tune run explores its space.

    ``algorithm``: grid | random | optuna. ``scheduler``: fifo | asha. ``num_samples``: trials drawn by
    a search (a grid's repetitions are its seed axis, made by :func:`build_space`). ``seed``: the
    searcher's random state, so the same command draws the same trials.
    """
    algorithm: str = "grid"
    scheduler: str = "fifo"
    num_samples: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.algorithm not in SEARCHES:
            raise ConfigError(f"unknown search {self.algorithm!r}; choose one of {', '.join(SEARCHES)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {self.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        if self.num_samples < 1:
            raise ConfigError(f"--num_samples must be at least 1, got {self.num_samples}")

    def describe(self) -> str:
        if self.algorithm == "grid":
            return f"grid search, {self.scheduler} scheduler"
        return (f"{self.algorithm} search of {self.num_samples} trials (searcher seed {self.seed}), "
                f"{self.scheduler} scheduler")


@dataclass
class Part:
    """One Tune run of an experiment: ``name`` is its folder under the storage (``<experiment>`` or
    ``<experiment>/<part>``), ``space`` its param space, ``search`` how it is explored."""
    name: str
    space: dict
    search: Search


DISTRIBUTIONS = ("uniform", "loguniform", "randint", "lograndint", "choice")  # --set key=loguniform(1, 30)


def parse_overrides(items: list[str]) -> dict:
    """``["key=value", ...]`` -> dict. Values are Python literals (``True``, ``1e-3``, ``[1, 2]``),
    a distribution for a search (``loguniform(5, 500)``, ``uniform(0, 1)``, ``randint(1, 8)``,
    ``choice([16, 32])``: Tune's function of that name), or plain strings; a list becomes a grid axis.
    A value that starts like a literal (``[``, ``(``, ``{``, a quote) but does not parse, or a call of a
    misspelt distribution, is a :class:`ConfigError` (it would otherwise run as a string)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        out[key.strip()] = _parse_value(key.strip(), raw.strip())
    return out


def _parse_value(key: str, raw: str):
    call = re.fullmatch(r"(\w+)\((.*)\)", raw, re.S)
    if call and call.group(1) in DISTRIBUTIONS:
        try:
            args = ast.literal_eval(f"({call.group(2)},)")
            return getattr(tune, call.group(1))(*args)
        except (ValueError, SyntaxError, TypeError, AssertionError) as err:
            raise ConfigError(f"cannot read the distribution {raw!r}: {err}") from None
    close = difflib.get_close_matches(call.group(1), DISTRIBUTIONS, n=1) if call else []
    if close:
        raise ConfigError(f"--set {key}={raw}: unknown distribution {call.group(1)!r} (did you mean {close[0]!r}?); "
                          f"the distributions are {', '.join(DISTRIBUTIONS)}")
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError) as err:
        if raw and raw[0] in "[({'\"":
            raise ConfigError(f"--set {key}={raw}: not a Python literal ({err}); write a list as [1, 2], "
                              "a dict as {'key': 1}, a string in matching quotes") from None
        return raw


def build_space(name: str, max_epochs: int, num_samples: int, overrides: dict | None = None,
                data_dir: str | None = None, search: str = "grid", part: str | None = None) -> dict:
    """The param space: the named space (its part ``part`` for an experiment of parts), overrides applied.

    A grid (``search="grid"``) gets ``seed`` as a grid axis in ``0..num_samples-1``, so sample ``k`` of
    every configuration is seeded ``k`` and the trainable and fixed runs of one seed see the same data;
    it may not hold distributions. A search keeps the space's single ``seed`` (default 0) for every trial
    (its ``num_samples`` trials are drawn by the searcher) and may not hold grid axes. Either mistake is a
    :class:`ConfigError` naming the keys and the fix.
    """
    try:
        experiment = get_experiment(name)
    except KeyError as err:
        raise ConfigError(str(err)) from None
    space = experiment.space(max_epochs)
    parts = experiment.parts
    if parts is not None:
        if part not in parts:
            raise ConfigError(f"{name!r} is an experiment of parts ({', '.join(parts)}); "
                              "name one (build_parts runs all)")
        space = space[part]
    dataset = (overrides or {}).get("dataset_name")
    if dataset is not None and dataset != space.get("dataset_name") and "protocol" not in (overrides or {}):
        space.pop("protocol", None)  # a split protocol is the grid's corpus's own: another corpus uses its default
    for key, value in (overrides or {}).items():
        in_variants = [axis for axis, v in space.items() if is_variant(axis) and isinstance(v, dict)
                       and any(key in option for option in v.get("grid_search", []))]
        if in_variants and isinstance(value, list):
            raise ConfigError(f"{key} is set by the grid axis {in_variants[0]!r} of {name!r}; it cannot become "
                              "a grid axis of its own (give a single value)")
        for axis in in_variants:  # a single value replaces the key in every option of that axis
            options = space[axis]["grid_search"]
            space[axis] = tune.grid_search([{**o, key: value} if key in o else o for o in options])
        space[key] = tune.grid_search(value) if isinstance(value, list) else value
    grid_keys = sorted(k for k, v in space.items() if _is_grid(v))
    distributions = sorted(k for k, v in space.items() if isinstance(v, Domain))
    if search == "grid":
        if distributions:
            raise ConfigError(f"{name!r} declares distributions ({', '.join(distributions)}); a grid cannot "
                              "sample them: use --search=random or --search=optuna, or give each a single value "
                              "with --set KEY=VALUE")
        space["seed"] = tune.grid_search(list(range(num_samples)))
    else:
        if grid_keys:
            raise ConfigError(f"--search={search} cannot explore grid axes ({', '.join(grid_keys)}) of {name!r}: "
                              "Ray Tune cannot mix grid_search with a searcher. Give each a single value with "
                              "--set KEY=VALUE (one command per value), or use --search=grid")
        if not distributions:
            raise ConfigError(f"--search={search}: {name!r} declares no distribution to search "
                              "(tune.loguniform, tune.choice, ... in search_spaces.py); use --search=grid")
        space.setdefault("seed", 0)
    if data_dir is not None:
        space["data_dir"] = str(Path(data_dir).resolve())
    try:
        for config in expand_grid(space):
            n_segments(config)
    except (KeyError, ValueError) as err:
        raise ConfigError(err.args[0]) from None
    return space


def build_parts(name: str, max_epochs: int, num_samples: int, overrides: dict | None = None,
                search: str | None = None, scheduler: str | None = None, search_seed: int = 0) -> list[Part]:
    """The Tune runs one ``main.py --name=<name>`` command starts, in order.

    A plain space is one part in ``<name>``, explored with ``search`` (default grid) and ``scheduler``
    (default fifo). An experiment of parts (its record's ``parts``) has one per part in ``<name>/<part>``,
    each with its declared search, scheduler and samples; ``search``/``scheduler``, when given, replace
    the declared ones of the parts that search (its grid parts stay grids).
    """
    canonical = canonical_name(name)
    try:
        declared = get_experiment(name).parts
    except KeyError as err:
        raise ConfigError(str(err)) from None
    if declared is None:
        how = Search(search or "grid", scheduler or "fifo", num_samples, search_seed)
        return [Part(canonical, build_space(name, max_epochs, num_samples, overrides, search=how.algorithm), how)]
    parts = []
    for part, declared_part in declared.items():
        part_search, part_scheduler, samples = declared_part.search, declared_part.scheduler, declared_part.samples
        if part_search != "grid":
            part_search, part_scheduler = search or part_search, scheduler or part_scheduler
        how = Search(part_search, part_scheduler, samples or num_samples, search_seed)
        space = build_space(name, max_epochs, how.num_samples, overrides, search=how.algorithm, part=part)
        parts.append(Part(f"{canonical}/{part}", space, how))
    return parts


def _is_grid(value) -> bool:
    return isinstance(value, dict) and "grid_search" in value


def expand_grid(space: dict) -> list[dict]:
    """Every resolved trial config of ``space`` (the product of its ``grid_search`` axes), in
    Tune's order up to permutation; raises ``KeyError`` for an unknown key.

    A distribution counts as an axis of the values a trial can get at its edges: a ``tune.choice``
    its categories, a numeric one its bounds, so checks and data preparation see every extreme.
    """
    axes = {k: v["grid_search"] for k, v in space.items() if _is_grid(v)}
    axes.update({k: _edges(v) for k, v in space.items() if isinstance(v, Domain)})
    fixed = {k: v for k, v in space.items() if k not in axes}
    return [resolve_config({**fixed, **dict(zip(axes, combo))}) for combo in itertools.product(*axes.values())]


def _edges(domain: Domain) -> list:
    """The categories of a ``tune.choice``, the bounds of a numeric distribution."""
    return list(domain.categories) if isinstance(domain, Categorical) else [domain.lower, domain.upper]


def _domain_repr(domain: Domain) -> str:
    """A distribution as stable text (``Float(5.0, 500.0) LogUniform``), the same in every process."""
    sampler = domain.get_sampler()
    kind = type(sampler).__name__.lstrip("_")
    if hasattr(sampler, "q"):  # quantized: the inner sampler and the step
        kind = f"{type(sampler.sampler).__name__.lstrip('_')} q={sampler.q}"
    values = domain.categories if isinstance(domain, Categorical) else domain.domain_str
    return f"{type(domain).__name__}{values} {kind}"


def space_repr(space: dict, search: Search | None = None) -> str:
    """The space (and, for a search or a scheduler, how it is explored) as stable text: what a rerun
    compares to tell whether it is the experiment that was started."""
    flat = {k: (v["grid_search"] if _is_grid(v) else _domain_repr(v) if isinstance(v, Domain) else v)
            for k, v in space.items()}
    if search is not None and search != Search(num_samples=search.num_samples, seed=search.seed):
        flat["(search)"] = vars(search)  # a plain grid keeps the format experiments were started with
    return json.dumps(flat, sort_keys=True, default=str)
