"""Ray Tune's overhead per epoch: one synthetic trial run by ``run_trial`` alone and through Tune.

    python benchmarks/bench_tune_overhead.py [--epochs 30] [--n_samples 5000] [--repeats 3] [--model conv_net]

The trial: ``linear_net`` (or ``--model``) on ``time_frequency`` data (``n_samples`` signals, seed 0, default
config otherwise, ``patience`` larger than ``epochs``), on one thread in both cases:

  (a) ``training.trial.run_trial(config, report)`` with a report that drops the checkpoints
      (the trial still writes each one into a temporary directory, as it does under Tune);
  (b) the same config as a one-trial experiment: ``tuning.runner.run_experiment`` into a
      temporary directory, on a local Ray, 1 CPU per trial.

Seconds per epoch are medians over epochs 2..N (the first is a warm-up): from a timer at every
report in (a), from Tune's ``time_this_iter_s`` in (b). Also printed: the checkpoints the trial
wrote (number, total size) in (a), the number Tune persisted and the size it keeps at the end in
(b), and (b)'s whole wall time (Ray start excluded, trial-process start included). Ray runs only
during (b). ``--repeats`` alternates (a) and (b) and prints the median and range over the repeats.
The fastest epoch (min) is printed too: it is the least disturbed by other processes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["OMP_NUM_THREADS"] = "1"  # run_trial sets torch's threads from it, as in a 1-CPU Ray trial

import torch  # noqa: E402

from training.trial import run_trial  # noqa: E402


def trial_config(epochs: int, n_samples: int, model: str = "linear_net") -> dict:
    return {"dataset_name": "time_frequency", "model_name": model, "n_samples": n_samples, "seed": 0,
            "max_epochs": epochs, "patience": 10 * epochs + 10}


def dir_bytes(path: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def run_alone(config: dict) -> dict:
    """(a): seconds per epoch (median, first epoch left out) and the checkpoints run_trial wrote."""
    torch.set_num_threads(1)
    stamps, sizes = [time.perf_counter()], []

    def report(metrics: dict, ckpt_dir: str | None) -> None:
        stamps.append(time.perf_counter())
        if ckpt_dir is not None:
            sizes.append(dir_bytes(ckpt_dir))

    run_trial(config, report)
    epochs = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"median": statistics.median(epochs[1:]), "min": min(epochs[1:]), "n_ckpt": len(sizes),
            "ckpt_bytes": sum(sizes), "load": os.getloadavg()[0]}


def run_tune(config: dict, num_cpus: int) -> dict:
    """(b): seconds per epoch from ``time_this_iter_s`` and the checkpoints Tune persisted and kept.

    Ray is started for this run only, so nothing of it runs during (a)."""
    import ray

    from tuning.runner import run_experiment

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024**2, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            exp_dir = Path(tmp) / "overhead"
            start = time.perf_counter()
            grid = run_experiment(config, exp_dir, {"cpu": 1}, verbose=0)
            wall = time.perf_counter() - start
            kept = sorted(exp_dir.glob("*/checkpoint_*"))
            kept_bytes = sum(dir_bytes(k) for k in kept)
    finally:
        ray.shutdown()
    [result] = list(grid)
    if result.error is not None:
        raise RuntimeError(f"the Tune trial failed: {result.error}")
    df = result.metrics_dataframe
    epochs = df["time_this_iter_s"].iloc[1:]
    return {"median": float(epochs.median()), "min": float(epochs.min()),
            "n_ckpt": int(df["checkpoint_dir_name"].notna().sum()), "kept": len(kept), "kept_bytes": kept_bytes,
            "wall": wall, "load": os.getloadavg()[0]}


def overhead(alone: dict, tuned: dict, key: str) -> float:
    """Tune's extra time per epoch in % of run_trial's."""
    return 100 * (tuned[key] / alone[key] - 1)


def spread(values: list[float], fmt: str = ".3f") -> str:
    return f"{statistics.median(values):{fmt}} (range {min(values):{fmt}}-{max(values):{fmt}})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n_samples", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--num_cpus", type=int, default=2, help="CPUs of the local Ray")
    p.add_argument("--model", default="linear_net",
                   help="model_name: linear_net (0.4 MB checkpoints) or conv_net (17 M weights, ~136 MB each)")
    args = p.parse_args()
    config = trial_config(args.epochs, args.n_samples, args.model)
    alone, tuned = [], []
    for _ in range(args.repeats):
        alone.append(run_alone(config))
        tuned.append(run_tune(config, args.num_cpus))

    print(f"\n{args.model}, time_frequency, n_samples {args.n_samples}, {args.epochs} epochs, 1 thread; code at {ROOT}")
    print("s/epoch over epochs 2..N: median and min; load = 1-minute load average when the run ended")
    print(f"  {'repeat':>6s} {'alone med':>9s} {'min':>6s} {'Tune med':>8s} {'min':>6s} {'overhead':>8s} "
          f"{'(of min)':>8s} {'load a/b':>9s} {'Tune wall s':>11s}")
    for i, (a, b) in enumerate(zip(alone, tuned)):
        print(f"  {i + 1:6d} {a['median']:9.3f} {a['min']:6.3f} {b['median']:8.3f} {b['min']:6.3f} "
              f"{overhead(a, b, 'median'):7.1f}% {overhead(a, b, 'min'):7.1f}% {a['load']:4.1f}/{b['load']:<4.1f} "
              f"{b['wall']:11.1f}")
    print(f"run_trial alone: {spread([a['median'] for a in alone])} s/epoch")
    print(f"through Tune:    {spread([b['median'] for b in tuned])} s/epoch")
    print(f"Tune overhead:   {spread([overhead(a, b, 'median') for a, b in zip(alone, tuned)], '.1f')} % "
          f"(of the minima: {spread([overhead(a, b, 'min') for a, b in zip(alone, tuned)], '.1f')} %)")
    print(f"checkpoints: (a) {alone[0]['n_ckpt']} written, {alone[0]['ckpt_bytes'] / 1e6:.2f} MB in all; "
          f"(b) {tuned[0]['n_ckpt']} persisted by Tune, {tuned[0]['kept']} kept "
          f"({tuned[0]['kept_bytes'] / 1e6:.2f} MB)")

if __name__ == "__main__":
    main()
