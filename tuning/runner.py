"""Assemble a grid or a search from a named search space and run it with Ray Tune, resuming when possible.

The experiment lives in ``<storage>/<name>``, where ``storage`` is a local path (made absolute) or
a URI (``s3://bucket/prefix``, ``file:///abs/path``). Object-store URIs go to Tune unchanged; a local
folder (a path or ``file://``) goes through :class:`tuning.storage.AtomicLocalHandler`, so a kill
never leaves a half-written experiment state or result file. Rerunning the same
command restores it with ``Tuner.restore`` (finished trials kept, unfinished ones continued from
their last checkpoint); a new ``Tuner`` would silently start over. A trial that fails (its node
dies, its process is killed) is restarted from its last checkpoint up to ``max_failures`` times.

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
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from ray import tune
from ray.exceptions import LocalRayletDiedError, NodeDiedError, ObjectLostError, OutOfMemoryError, RayActorError, \
    RaySystemError, RayTaskError, RpcError, TaskCancelledError, WorkerCrashedError
from ray.tune.search.sample import Categorical, Domain

from tuning.experiments import canonical_name, get_experiment
from training.config import is_variant, resolve_config
from training.segments import n_segments
from training.provenance import VERSION_ENV, code_version
from training.trial import train_trial
from tuning.storage import display, experiment_location, is_uri, read_text, split_location, tune_storage, write_text
from tuning.tune_state import save_state_safely

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPACE_FILE = "harness_space.json"  # the param space an experiment was started with
SEARCHES = ("grid", "random", "optuna")
SCHEDULERS = ("fifo", "asha")
METRIC, MODE = "best_valid_loss", "min"  # what searchers and ASHA optimise: the loss early stopping selects by
ASHA_REDUCTION = 3  # ASHA keeps the best third of the trials at each rung


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


def _space_repr(space: dict, search: Search | None = None) -> str:
    """The space (and, for a search or a scheduler, how it is explored) as stable text: what a rerun
    compares to tell whether it is the experiment that was started."""
    flat = {k: (v["grid_search"] if _is_grid(v) else _domain_repr(v) if isinstance(v, Domain) else v)
            for k, v in space.items()}
    if search is not None and search != Search(num_samples=search.num_samples, seed=search.seed):
        flat["(search)"] = vars(search)  # a plain grid keeps the format experiments were started with
    return json.dumps(flat, sort_keys=True, default=str)


def trial_resources(cpus_per_trial: float, gpus_per_trial: float | None, name: str | None = None) -> dict:
    """Resources per trial, chosen after ``ray.init``: a GPU share only if the cluster has GPUs
    (a GPU request on a GPU-less cluster would leave trials pending forever). The default share is
    the experiment's ``gpu_share`` (1/3 without a name)."""
    import ray

    n_gpus = ray.cluster_resources().get("GPU", 0)
    if gpus_per_trial is None:
        gpus_per_trial = (get_experiment(name).gpu_share if name else 1 / 3) if n_gpus > 0 else 0
    if gpus_per_trial > 0 and n_gpus == 0:
        raise ConfigError(f"--gpus_per_trial={gpus_per_trial} but the Ray cluster has no GPU; "
                          "use --gpus_per_trial=0 (the default without CUDA)")
    resources = {"cpu": cpus_per_trial}
    if gpus_per_trial > 0:
        resources["gpu"] = gpus_per_trial
    return resources


RUNTIME_EXCLUDES = [".git", ".venv", "data", "results", "ray_results", "cache", "mlruns"]


def init_ray(address: str | None, num_cpus: int | None = None, connect_timeout: float = 60.0) -> None:
    """Start a local Ray (``address=None``) or join a cluster (``auto`` or ``host:port``).

    The trial code reaches the workers through ``PYTHONPATH`` locally and through the runtime
    environment's ``working_dir`` on a cluster (code only: every node needs the same Python
    packages installed). Joining never hangs: see :func:`tuning.cluster.connect`, which raises
    :class:`tuning.cluster.ClusterError` or exits with status 2 after ``connect_timeout`` seconds.
    """
    import ray

    if ray.is_initialized():
        return
    # the driver's commit: the copy of the code shipped to cluster nodes has no .git to ask
    version = {VERSION_ENV: code_version()}
    if address:
        from tuning.cluster import connect
        connect(address, {"working_dir": str(PROJECT_ROOT), "excludes": RUNTIME_EXCLUDES, "env_vars": version},
                connect_timeout)
    else:
        path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 object_store_memory=512 * 1024**2, runtime_env={"env_vars": {"PYTHONPATH": path, **version}})


def tune_config(search: Search, space: dict, max_concurrent: int | None = None) -> tune.TuneConfig:
    """Tune's settings for ``search`` over ``space``.

    ``random``: Tune's random sampler seeded with ``search.seed``. ``optuna``: ``OptunaSearch`` with
    TPE seeded with ``search.seed``; its first 10 trials are seeded random draws, later ones depend on
    the results that have come in, so they repeat exactly only with ``--max_concurrent=1``. ``asha``:
    ``ASHAScheduler`` on ``training_iteration`` (one per epoch), ``max_t`` the space's ``max_epochs``,
    grace period a tenth of it (at least 1 epoch), reduction factor 3.
    """
    searcher, scheduler, metric = None, None, {}
    if search.algorithm == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator
        searcher = BasicVariantGenerator(random_state=search.seed)
    elif search.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch
        searcher = OptunaSearch(seed=search.seed)
    if search.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler
        max_t = max(int(config["max_epochs"]) for config in expand_grid(space))
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=max(1, max_t // 10),
                                  reduction_factor=ASHA_REDUCTION)
    if searcher is not None or scheduler is not None:
        metric = {"metric": METRIC, "mode": MODE}
    return tune.TuneConfig(num_samples=1 if search.algorithm == "grid" else search.num_samples,
                           max_concurrent_trials=max_concurrent, reuse_actors=True, search_alg=searcher,
                           scheduler=scheduler, **metric)


def run_experiment(space: dict, exp_dir: str | Path, resources: dict, max_concurrent: int | None = None,
                   verbose: int = 1, max_failures: int = 2, search: Search | None = None,
                   callbacks: list | None = None):
    """Run (or resume) the experiment at ``exp_dir`` (a path or a URI); return Tune's ``ResultGrid``.

    A new experiment keeps 2 checkpoints per trial and restarts a failed trial from its last one up
    to ``max_failures`` times; ``search`` (default: a grid) says how the space is explored. A resumed
    one keeps the settings it was started with, its searcher's state and the trials it has drawn.
    ``callbacks`` (Tune callbacks: the tracking of ``tuning/tracking.py``) are this command's, resumed or
    not: they replace those a resumed experiment stored (Tune keeps its RunConfig in tuner.pkl).
    """
    search = search or Search()
    exp = str(exp_dir) if is_uri(exp_dir) else str(Path(exp_dir).resolve())
    space_file = experiment_location(exp, SPACE_FILE)
    trainable = tune.with_resources(train_trial, resources)
    exp_path, fs = tune_storage(exp)  # local folders: every file written whole (AtomicLocalHandler)
    if tune.Tuner.can_restore(exp_path, storage_filesystem=fs):
        stored = read_text(space_file)
        if stored is not None and stored != _space_repr(space, search):
            print(f"note: {display(exp)} was started with a different search space or search; resuming it as "
                  "it was stored. Use --fresh to start over with the new one.")
        print(f"resuming the experiment in {display(exp)}")
        tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_errored=True, storage_filesystem=fs)
        tuner._local_tuner.get_run_config().callbacks = list(callbacks or [])  # restore takes no RunConfig
    else:
        storage, name = split_location(exp_path)
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune_config(search, space, max_concurrent),
            run_config=tune.RunConfig(
                storage_path=storage, storage_filesystem=fs, name=name, verbose=verbose,
                failure_config=tune.FailureConfig(max_failures=max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2), callbacks=list(callbacks or [])),
        )
        write_text(space_file, _space_repr(space, search))
    save_state_safely()  # a kill -9 at any moment leaves a state the rerun restores (tuning/tune_state.py)
    return tuner.fit()


def stored_search(exp: str) -> Search | None:
    """How the experiment at ``exp`` (a path or a URI) was started, from its stored space (a grid when it
    records no search); ``None`` when nothing is stored. A resumed experiment keeps these settings,
    whatever the new command says."""
    text = read_text(experiment_location(exp, SPACE_FILE))
    return None if text is None else Search(**json.loads(text).get("(search)", {}))


def summarize(results, search: Search | None = None) -> tuple[int, int, int, list[tuple[BaseException, str]]]:
    """Print one line per trial; return ``(finished, stopped, unfinished, errors)``.

    ``stopped``: trials the scheduler ended early (never tested; a rerun does not resume them).
    ``unfinished`` counts, for a search, the trials it has not drawn yet (an interrupted search).
    ``errors``: ``(exception, trial folder name)`` of each errored trial (see :func:`error_report`)."""
    from figures.results import stopped_early

    df = results.get_dataframe()
    stopped = stopped_early(df)
    finished = int((df["done"].fillna(False).astype(bool) & ~stopped).sum()) if "done" in df else 0
    errors = [(result.error, posixpath.basename(result.path.rstrip("/"))) for result in results
              if result.error is not None]
    expected = len(results) if search is None or search.algorithm == "grid" else search.num_samples
    varying = [c for c in df if c.startswith("config/") and df[c].astype(str).nunique() > 1]  # the grid axes
    cols = varying + [c for c in ("epoch", "best_lambd_est", "best_valid_acc", "test_accuracy") if c in df]
    if len(df):
        print(df[cols].rename(columns=lambda c: c.split("/")[-1]).to_string(index=False))
    return finished, int(stopped.sum()), max(0, expected - finished - int(stopped.sum()) - len(errors)), errors


# Ray's errors for a trial it lost: its process killed or crashed (Ray's out-of-memory killer too), its node
# or Ray's own services gone. The trial's code raised nothing, so a rerun, which resumes the trial from its
# last checkpoint, can finish it.
LOST_TRIAL_ERRORS = (RayActorError, NodeDiedError, LocalRayletDiedError, WorkerCrashedError, ObjectLostError,
                     OutOfMemoryError, RaySystemError, RpcError, TaskCancelledError)
RERUN = "rerun the same command to resume the experiment"


def raised(error: BaseException) -> BaseException:
    """The exception that ended a trial: the one its own code raised (Ray hands it over as the ``cause``
    of a ``RayTaskError``), else Ray's."""
    cause = error.cause if isinstance(error, RayTaskError) else None
    return error if cause is None else cause


def rerun_can_help(error: BaseException) -> bool:
    """Whether rerunning the same command can finish a trial that ended with ``error``: yes when Ray lost
    the trial (``LOST_TRIAL_ERRORS``); no when the trial's own code raised (a config value, data that is
    not there, a GPU that torch cannot use, ...): the same code on the same config and machine raises again."""
    return isinstance(raised(error), LOST_TRIAL_ERRORS)


def error_line(error: BaseException) -> str:
    """``"Type: message"`` of the exception that ended a trial (:func:`raised`), the message cut to its
    first line: the last line of the trial's ``error.txt`` traceback for a one-line message (not the
    traceback's first line, "Traceback (most recent call last):" or Ray's ``ray::ImplicitFunc.train()``).
    A ``RayTaskError`` whose cause did not come back gives the last line of its traceback."""
    exc = raised(error)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, RayTaskError):
        return lines[-1] if lines else type(exc).__name__
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def error_report(errors: list[tuple[BaseException, str]], unfinished: int, exp: str) -> list[str]:
    """What ``main.py`` prints after the counts of the experiment at ``exp`` (a path or a URI).

    ``errors`` (from :func:`summarize`) grouped by :func:`error_line`, most frequent first: ``"6 errored:
    <line>"`` and the ``error.txt`` of the first such trial. Then :data:`RERUN` when a rerun can finish
    something (``unfinished`` trials, a trial Ray lost: :func:`rerun_can_help`), and a line saying to fix
    the cause first when a trial's own code raised."""
    groups: dict[str, list[str]] = {}
    for error, folder in errors:
        groups.setdefault(error_line(error), []).append(folder)
    lines = []
    for line, folders in sorted(groups.items(), key=lambda group: -len(group[1])):  # ties: first seen first
        lines += [f"{len(folders)} errored: {line}",
                  f"  traceback: {display(experiment_location(experiment_location(exp, folders[0]), 'error.txt'))}"]
    lasting = sum(not rerun_can_help(error) for error, _ in errors)
    if unfinished or lasting < len(errors):
        lines.append(RERUN)
    if lasting:
        lines.append(f"{lasting} errored trial(s) raised an error of their own (above), which a rerun would raise "
                     "again: fix the cause first (after changing a value of the command, add --fresh to start over)")
    return lines
