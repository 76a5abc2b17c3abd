"""Run a named grid with Ray Tune. Rerun the same command to resume an interrupted experiment.

    python main.py --num_samples=5 --max_epochs=10000 --name=time_frequency \\
        --ray_root_dir=$(pwd)/ray_results/ --data_dir=$(pwd)/data/audio-mnist

A search instead of a grid (docs/searches.md): the best fixed DMEL window on FSDD by Optuna
TPE with ASHA, against one trainable DMEL run per initial window:

    python main.py --name=window_search --num_samples=30 --max_epochs=100 --data_dir=$(pwd)/data/audio-mnist

On a cluster (see docs/cluster.md):

    RAY_AUTH_MODE=token python main.py --address=HEAD_IP:6379 --storage=/shared/ray_results --name=gtzan \\
        --data_dir=/shared/data/gtzan

Every value is checked before Ray starts (tuning/validate.py): a bad one is refused with one line, exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from corpora import CORPORA, prepare
from transfer.cache import prepare as prepare_embeddings
from transfer.features import missing_files
from tuning.runner import error_report, init_ray, run_experiment, stored_search, summarize, trial_resources
from tuning.spaces import SCHEDULERS, SEARCHES, ConfigError, build_parts, expand_grid, parse_overrides
from tuning.storage import display, exists, experiment_location, move_aside, storage_root
from tuning.tracking import DEFAULT_URI as DEFAULT_MLFLOW_URI, tracking_callbacks
from tuning.validate import check_arguments, check_configs, check_space, check_storage

PROJECT_ROOT = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="time_frequency", help="a registered experiment (--list shows them; search_spaces.py defines them)")
    p.add_argument("--num_samples", type=int, default=1,
                   help="grid: repetitions of the grid (seeds 0..N-1); random/optuna: trials drawn by the search")
    p.add_argument("--search", choices=SEARCHES, default=None,
                   help="grid: every combination of the grid axes (default); random: Tune's random sampler; "
                        "optuna: TPE (Ray's OptunaSearch). A search draws from the space's distributions and "
                        "refuses grid axes (give them single values with --set)")
    p.add_argument("--scheduler", choices=SCHEDULERS, default=None,
                   help="fifo: every trial runs to its end (default); asha: ASHA stops trials whose best_valid_loss "
                        "trails (rungs in epochs, grace period max_epochs/10)")
    p.add_argument("--search_seed", type=int, default=0, help="random state of the searcher (same seed, same trials)")
    p.add_argument("--max_epochs", type=int, default=100)
    p.add_argument("--ray_root_dir", default="ray_results", help="experiments go to <ray_root_dir>/<name>")
    p.add_argument("--storage", default=None,
                   help="where experiments go instead of --ray_root_dir: a path every node sees at the same place, "
                        "or a URI (s3://bucket/prefix, gs://..., file:///abs/path); the experiment is <storage>/<name>")
    p.add_argument("--data_dir", default=None,
                   help="dataset root (default data/audio-mnist, data/gtzan or data/fma; unused by synthetic data)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (budget, grid axis as a list), e.g. --set n_samples=1500")
    p.add_argument("--cpus_per_trial", type=float, default=1)
    p.add_argument("--gpus_per_trial", type=float, default=None,
                   help="GPU share per trial (default when the cluster has GPUs: the grid's share, "
                        "gpu_share in search_spaces.py; else 0)")
    p.add_argument("--max_concurrent", type=int, default=None, help="cap on trials running at once")
    p.add_argument("--max_failures", type=int, default=2,
                   help="restarts of a failed trial (lost node, killed process) from its last checkpoint")
    p.add_argument("--num_cpus", type=int, default=None, help="CPUs of a local Ray (default: all)")
    p.add_argument("--address", default=None, help="join an existing Ray cluster ('auto' or host:port)")
    p.add_argument("--connect_timeout", type=float, default=60,
                   help="seconds to wait for the cluster of --address before giving up (exit 2)")
    p.add_argument("--prepare_only", action="store_true",
                   help="check the data and build the decoded-audio cache (on every node with --address), then exit")
    p.add_argument("--fresh", action="store_true", help="move an existing experiment aside and start over")
    p.add_argument("--mlflow", nargs="?", const=DEFAULT_MLFLOW_URI, default=None, metavar="URI",
                   help="log every trial (config, per-epoch and test metrics) to MLflow, one run per trial in the "
                        "MLflow experiment <name>[/<part>]: a folder or file:/path (file store), sqlite:///path.db, "
                        "http(s)://host:port; alone: <project>/mlruns/mlflow.db (docs/tracking.md). Default off")
    p.add_argument("--list", nargs="?", const="all", default=None, metavar="KIND",
                   help="print the registered experiments, front-ends and datasets and exit; --list=experiments|"
                        "frontends|datasets|runs prints one tab-separated line per record (for scripts)")
    return p.parse_args(argv)


def _absolute(path) -> str:
    """An absolute path as typed (no symlink resolution): the same string is used on every node."""
    return os.path.abspath(os.path.expanduser(str(path)))


def _error(message) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _locate_data(space: dict, args) -> None:
    """Put the dataset folder (checked here unless on a cluster) and the decoded-audio cache into ``space``."""
    corpus = CORPORA.get(space["dataset_name"]) if space.get("dataset_name") in CORPORA else None
    if corpus is not None and corpus.reads_disk:
        data_dir = args.data_dir or corpus.default_dir
        if data_dir is None:
            raise ConfigError(f"dataset_name={corpus.name} needs --data_dir: {corpus.download_hint}")
        if not args.address and not Path(data_dir).is_dir():  # on a cluster, every node is checked later
            raise ConfigError(f"no dataset at {data_dir}: {corpus.download_hint}")
        space["data_dir"] = _absolute(data_dir)
    if corpus is not None and corpus.cache_keys is not None and not isinstance(space.get("cache_dir"), dict):
        # the driver's absolute path, the same on every node (not a per-node copy of the project)
        space["cache_dir"] = _absolute(space.get("cache_dir") or PROJECT_ROOT / "cache")


def _print_list(kind: str) -> int:
    from tuning.catalog import KINDS, rows, tables
    if kind == "all":
        print(tables())
        return 0
    if kind not in KINDS:
        return _error(f"--list={kind}: choose one of {', '.join(KINDS)} (or --list alone for the tables)")
    for row in rows(kind):
        print("\t".join(row))
    return 0


def _refuse(problems: list[str]) -> int:
    for problem in problems:
        _error(problem)
    return 2


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list is not None:
        return _print_list(args.list)
    problems = check_arguments(args)
    if problems:
        return _refuse(problems)
    try:
        parts = build_parts(args.name, args.max_epochs, args.num_samples, parse_overrides(args.overrides),
                            args.search, args.scheduler, args.search_seed)
        for part in parts:
            _locate_data(part.space, args)
        configs = [config for part in parts for config in expand_grid(part.space)]
    except (ConfigError, FileNotFoundError, ValueError) as err:
        return _error(err)
    root = storage_root(args.storage, args.ray_root_dir)
    storage_problems = [] if args.prepare_only else check_storage(
        root, [part.name for part in parts], "--storage" if args.storage else "--ray_root_dir")
    problems = ([line for part in parts for line in check_space(part.space)] + check_configs(configs)
                + missing_files(configs) + storage_problems)
    if problems:  # refused before Ray, the data cache or an experiment folder is touched
        return _refuse(problems)
    try:
        if not args.address and prepare(configs):
            print("decoded-audio cache ready")
        if not args.address and prepare_embeddings(configs):  # transfer trials' rows (on a cluster: the first trial's)
            print("embedding cache ready")
    except (ConfigError, FileNotFoundError, ValueError) as err:
        return _error(err)
    if args.prepare_only and not args.address:
        return 0
    from tuning.cluster import ClusterError, cluster_summary, prepare_on_nodes
    try:
        init_ray(args.address, args.num_cpus, args.connect_timeout)
        resources = trial_resources(args.cpus_per_trial, args.gpus_per_trial, args.name)
    except (ConfigError, ClusterError) as err:
        return _error(err)
    if args.address:
        summary = cluster_summary()
        print(f"cluster: {summary['nodes']} node(s), {summary['CPU']:g} CPUs, {summary['GPU']:g} GPUs")
        if summary["GPU"] == 0 and summary["CPU"] > 0:
            print("warning: the cluster has no GPU (no GPU node has joined yet?): trials will run on CPU",
                  file=sys.stderr)
        ready, errors = prepare_on_nodes(configs, resources)
        for line in ready:
            print(line)
        for line in errors:
            print(f"error: {line}", file=sys.stderr)
        if errors:
            return 2
        if args.prepare_only:
            return 0
    # a failing trial's traceback goes to its error.txt, not to this output once per failure (Tune's own
    # switch; TUNE_PRINT_ALL_TRIAL_ERRORS=1 prints them as they happen): the summary below names each cause once
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    for part in parts:  # in order; an incomplete part (interrupted, errored) stops the command
        exp = experiment_location(root, part.name)
        if args.fresh and exists(exp):
            print(f"moved the previous experiment to {display(move_aside(exp))}")
        print(f"experiment {display(exp)}; {part.search.describe()}; resources per trial {resources}")
        results = run_experiment(part.space, exp, resources, args.max_concurrent, max_failures=args.max_failures,
                                 search=part.search, callbacks=tracking_callbacks(args.mlflow, part.name))
        finished, stopped, unfinished, errors = summarize(results, stored_search(exp) or part.search)
        early = f", {stopped} stopped early by the scheduler" if part.search.scheduler != "fifo" else ""
        print(f"{finished} trials finished, {unfinished} unfinished, {len(errors)} errored{early}")
        for line in error_report(errors, unfinished, exp):
            print(line, file=sys.stderr)
        if unfinished or errors:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
