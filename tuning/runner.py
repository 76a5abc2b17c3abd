"""Assemble a grid from a named search space and run it with Ray Tune, resuming when possible.

The experiment lives in ``<storage>/<name>``, where ``storage`` is a local path (made absolute) or
a URI (``s3://bucket/prefix``, ``file:///abs/path``) handed to Tune unchanged. Rerunning the same
command restores it with ``Tuner.restore`` (finished trials kept, unfinished ones continued from
their last checkpoint); a new ``Tuner`` would silently start over. A trial that fails (its node
dies, its process is killed) is restarted from its last checkpoint up to ``max_failures`` times.
"""
from __future__ import annotations

import ast
import itertools
import json
import os
from pathlib import Path

from ray import tune

import search_spaces
from training.config import is_variant, resolve_config
from training.segments import n_segments
from training.provenance import VERSION_ENV, code_version
from training.trial import train_trial
from tuning.storage import display, experiment_location, is_uri, read_text, split_location, write_text

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPACE_FILE = "harness_space.json"  # the param space an experiment was started with


class ConfigError(ValueError):
    """A user mistake in the command line or search space; the message says what to do."""


def parse_overrides(items: list[str]) -> dict:
    """``["key=value", ...]`` -> dict. Values are Python literals (``True``, ``1e-3``, ``[1, 2]``)
    or plain strings; a list becomes a grid axis."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out[key.strip()] = value
    return out


def build_space(name: str, max_epochs: int, num_samples: int, overrides: dict | None = None,
                data_dir: str | None = None) -> dict:
    """The param space: the named grid, overrides applied, ``seed`` in ``0..num_samples-1``.

    Seeds are a grid axis, so sample ``k`` of every configuration is seeded ``k`` and the
    trainable and fixed runs of one seed see the same data.
    """
    try:
        space = search_spaces.get_space(name, max_epochs)
    except KeyError as err:
        raise ConfigError(err.args[0]) from None
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
    space["seed"] = tune.grid_search(list(range(num_samples)))
    if data_dir is not None:
        space["data_dir"] = str(Path(data_dir).resolve())
    try:
        for config in expand_grid(space):
            n_segments(config)
    except (KeyError, ValueError) as err:
        raise ConfigError(err.args[0]) from None
    return space


def expand_grid(space: dict) -> list[dict]:
    """Every resolved trial config of ``space`` (the product of its ``grid_search`` axes), in
    Tune's order up to permutation; raises ``KeyError`` for an unknown key."""
    axes = {k: v["grid_search"] for k, v in space.items() if isinstance(v, dict) and "grid_search" in v}
    fixed = {k: v for k, v in space.items() if k not in axes}
    return [resolve_config({**fixed, **dict(zip(axes, combo))}) for combo in itertools.product(*axes.values())]


def _space_repr(space: dict) -> str:
    return json.dumps({k: (v if not isinstance(v, dict) else v.get("grid_search", v)) for k, v in space.items()},
                      sort_keys=True, default=str)


def trial_resources(cpus_per_trial: float, gpus_per_trial: float | None, name: str | None = None) -> dict:
    """Resources per trial, chosen after ``ray.init``: a GPU share only if the cluster has GPUs
    (a GPU request on a GPU-less cluster would leave trials pending forever). The default share is
    ``search_spaces.gpu_fraction(name)`` (1/3 without a name)."""
    import ray

    n_gpus = ray.cluster_resources().get("GPU", 0)
    if gpus_per_trial is None:
        gpus_per_trial = (search_spaces.gpu_fraction(name) if name else 1 / 3) if n_gpus > 0 else 0
    if gpus_per_trial > 0 and n_gpus == 0:
        raise ConfigError(f"--gpus_per_trial={gpus_per_trial} but the Ray cluster has no GPU; "
                          "use --gpus_per_trial=0 (the default without CUDA)")
    resources = {"cpu": cpus_per_trial}
    if gpus_per_trial > 0:
        resources["gpu"] = gpus_per_trial
    return resources


RUNTIME_EXCLUDES = [".git", ".venv", "data", "results", "ray_results", "cache"]


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


def run_experiment(space: dict, exp_dir: str | Path, resources: dict, max_concurrent: int | None = None,
                   verbose: int = 1, max_failures: int = 2):
    """Run (or resume) the experiment at ``exp_dir`` (a path or a URI); return Tune's ``ResultGrid``.

    A new experiment keeps 2 checkpoints per trial and restarts a failed trial from its last one up
    to ``max_failures`` times; a resumed one keeps the settings it was started with.
    """
    exp = str(exp_dir) if is_uri(exp_dir) else str(Path(exp_dir).resolve())
    space_file = experiment_location(exp, SPACE_FILE)
    trainable = tune.with_resources(train_trial, resources)
    if tune.Tuner.can_restore(exp):
        stored = read_text(space_file)
        if stored is not None and stored != _space_repr(space):
            print(f"note: {display(exp)} was started with a different search space; resuming it as it was "
                  "stored. Use --fresh to start over with the new one.")
        print(f"resuming the experiment in {display(exp)}")
        tuner = tune.Tuner.restore(exp, trainable=trainable, resume_errored=True)
    else:
        storage, name = split_location(exp)
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(
                storage_path=storage, name=name, verbose=verbose,
                failure_config=tune.FailureConfig(max_failures=max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
        )
        write_text(space_file, _space_repr(space))
    return tuner.fit()


def summarize(results) -> tuple[int, int, int]:
    """Print one line per trial; return ``(finished, unfinished, errored)`` counts."""
    df = results.get_dataframe()
    finished = int(df["done"].fillna(False).astype(bool).sum()) if "done" in df else 0
    errored = len(results.errors)
    varying = [c for c in df if c.startswith("config/") and df[c].astype(str).nunique() > 1]  # the grid axes
    cols = varying + [c for c in ("epoch", "best_lambd_est", "best_valid_acc", "test_accuracy") if c in df]
    if len(df):
        print(df[cols].rename(columns=lambda c: c.split("/")[-1]).to_string(index=False))
    return finished, max(0, len(results) - finished - errored), errored


