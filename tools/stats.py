"""Print a trained trial's model statistics: parameters, FLOPs, size on disk and CPU latency (models/stats.py).

    python -m tools.stats --experiment <storage>/<name> [--trial ID | --best] [--runs N] [--no_latency]

The trial is chosen as predict.py chooses it (:func:`inference.checkpoint.load_trial`: ``--trial`` a trial id
or folder, ``--best`` the highest ``best_valid_acc``, neither the experiment's only finished trial) and its
model rebuilt with its best weights (:func:`inference.checkpoint.build_trained`). The numbers are measured
again here, on this machine, for one model input (one segment of the trial's clips); the values the trial
recorded in its last report (trials since models/stats.py) are shown beside them.
"""
from __future__ import annotations

import argparse
import math
import sys

PROG = "python -m tools.stats"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", required=True, help="the experiment folder <storage>/<name> (path or URI)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", default=None, help="the trial id (or its folder name)")
    which.add_argument("--best", action="store_true", help="the finished trial with the highest best_valid_acc")
    parser.add_argument("--runs", type=int, default=None, help="timed forward passes for the latency "
                        "(default models.stats.LATENCY_RUNS)")
    parser.add_argument("--no_latency", action="store_true", help="skip the latency measurement")
    return parser.parse_args(argv)


def describe(name: str, value: float) -> str:
    """``value`` of the statistic ``name`` as text, with its unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if name.startswith("flops"):
        return f"{value:,.0f} FLOP ({value / 1e6:.3f} MFLOP)"
    if name == "model_bytes":
        return f"{value:,.0f} B ({value / 2**20:.2f} MiB)"
    if name == "latency_ms_cpu":
        return f"{value:.3f} ms"
    return f"{value:,.0f}"


def lines(stats: dict, recorded: dict) -> list[str]:
    """One line per statistic: name, the value measured here, the value the trial recorded (where it did)."""
    width = max(map(len, stats))
    out = []
    for name, value in stats.items():
        line = f"  {name:<{width}}  {describe(name, value)}"
        kept = recorded.get(name)
        if kept is not None and not (isinstance(kept, float) and math.isnan(kept)):
            line += f"   (recorded: {describe(name, kept)})"
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from inference.checkpoint import PredictError, build_trained, load_trial
    from models.stats import LATENCY_RUNS, model_stats

    try:
        trial = load_trial(args.experiment, args.trial, args.best)
        if trial.config["classifier"] is not None:
            raise PredictError(f"trial {trial.trial_id} is a scikit-learn head ({trial.config['classifier']}) on "
                               "embeddings: it has no network to count")
        model = build_trained(trial, "cpu")
    except PredictError as err:
        print(f"{PROG}: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    length = trial.segment_length
    stats = model_stats(model, length, latency=not args.no_latency, runs=args.runs or LATENCY_RUNS)
    print(f"trial {trial.trial_id} of {trial.experiment} ({trial.config['frontend']}, {trial.config['model_name']}): "
          f"one input = {length} samples at {trial.sample_rate} Hz ({trial.n_segments} segment(s) per clip); "
          "FLOPs: a multiply-add counts 2, FFTs 2.5 N log2 N (real); latency: median, one CPU thread")
    print("\n".join(lines(stats, trial.metrics)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
