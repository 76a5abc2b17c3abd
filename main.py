"""Run a named grid with Ray Tune. Rerun the same command to resume an interrupted experiment.

    python main.py --num_samples=5 --max_epochs=10000 --name=time_frequency \
        --ray_root_dir=$(pwd)/ray_results/ --data_dir=$(pwd)/data/audio-mnist
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from corpora import DEFAULT_DATA_DIRS, DOWNLOAD_HINTS, prepare
from search_spaces import canonical_name
from tuning.runner import ConfigError, build_space, expand_grid, init_ray, parse_overrides, run_experiment, \
    summarize, trial_resources


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="time_frequency", help="search space in search_spaces.py")
    p.add_argument("--num_samples", type=int, default=1, help="repetitions of the grid (seeds 0..N-1)")
    p.add_argument("--max_epochs", type=int, default=100)
    p.add_argument("--ray_root_dir", default="ray_results", help="experiments go to <ray_root_dir>/<name>")
    p.add_argument("--data_dir", default=None,
                   help="dataset root (default data/audio-mnist, data/gtzan or data/fma; unused by synthetic data)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (budget, grid axis as a list), e.g. --set n_samples=1500")
    p.add_argument("--cpus_per_trial", type=float, default=1)
    p.add_argument("--gpus_per_trial", type=float, default=None,
                   help="GPU fraction per trial (default 1/3 when the cluster has GPUs, else 0)")
    p.add_argument("--max_concurrent", type=int, default=None, help="cap on trials running at once")
    p.add_argument("--num_cpus", type=int, default=None, help="CPUs of a local Ray (default: all)")
    p.add_argument("--address", default=None, help="join an existing Ray cluster ('auto' or host:port)")
    p.add_argument("--fresh", action="store_true", help="move an existing experiment aside and start over")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        space = build_space(args.name, args.max_epochs, args.num_samples, parse_overrides(args.overrides))
        dataset = space.get("dataset_name")
        if dataset in DOWNLOAD_HINTS:
            data_dir = args.data_dir or DEFAULT_DATA_DIRS[dataset]
            if not Path(data_dir).is_dir():
                raise ConfigError(f"no dataset at {data_dir}: {DOWNLOAD_HINTS[dataset]}")
            space["data_dir"] = str(Path(data_dir).resolve())
        if prepare(expand_grid(space)):
            print("decoded-audio cache ready")
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    exp_dir = Path(args.ray_root_dir).resolve() / canonical_name(args.name)
    if args.fresh and exp_dir.exists():
        aside = exp_dir.with_name(f"{exp_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(exp_dir, aside)
        print(f"moved the previous experiment to {aside}")
    init_ray(args.address, args.num_cpus)
    try:
        resources = trial_resources(args.cpus_per_trial, args.gpus_per_trial)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"experiment {exp_dir}; resources per trial {resources}")
    results = run_experiment(space, exp_dir, resources, args.max_concurrent)
    finished, unfinished, errored = summarize(results)
    print(f"{finished} trials finished, {unfinished} unfinished, {errored} errored")
    if unfinished or errored:
        print("rerun the same command to resume the experiment", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
