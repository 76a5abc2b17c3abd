"""Run an experiment's param space (:mod:`tuning.spaces`) with Ray Tune, resuming when possible; report its trials.

The experiment lives in ``<storage>/<name>``, where ``storage`` is a local path (made absolute) or
a URI (``s3://bucket/prefix``, ``file:///abs/path``). Object-store URIs go to Tune unchanged; a local
folder (a path or ``file://``) goes through :class:`tuning.storage.AtomicLocalHandler`, so a kill
never leaves a half-written experiment state or result file. Rerunning the same
command restores it with ``Tuner.restore`` (finished trials kept, unfinished ones continued from
their last checkpoint); a new ``Tuner`` would silently start over. A trial that fails (its node
dies, its process is killed) is restarted from its last checkpoint up to ``max_failures`` times.

The space itself (its grid axes, distributions, parts and how each is explored) comes from
:mod:`tuning.spaces`, which needs no running Ray; this module starts Ray, runs the space and reports.
"""
from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path

from ray import tune
from ray.exceptions import LocalRayletDiedError, NodeDiedError, ObjectLostError, OutOfMemoryError, RayActorError, \
    RaySystemError, RayTaskError, RpcError, TaskCancelledError, WorkerCrashedError

from tuning import status
from tuning.experiments import get_experiment
from training.provenance import VERSION_ENV, code_version
from training.trial import train_trial
from tuning.spaces import ConfigError, Search, expand_grid, space_repr
from tuning.storage import display, experiment_location, is_uri, read_text, split_location, tune_storage, write_text
from tuning.tune_state import save_state_safely

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPACE_FILE = "harness_space.json"  # the param space an experiment was started with
METRIC, MODE = "best_valid_loss", "min"  # what searchers and ASHA optimise: the loss early stopping selects by
ASHA_REDUCTION = 3  # ASHA keeps the best third of the trials at each rung


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
        if stored is not None and stored != space_repr(space, search):
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
        write_text(space_file, space_repr(space, search))
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
    df = results.get_dataframe()
    stopped = status.stopped_early(df)  # the rule the figures count by too (tuning/status.py)
    finished = int(status.finished(df).sum())
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
