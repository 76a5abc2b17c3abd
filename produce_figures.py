"""Figures and tables from the experiments on disk (no retraining).

    python produce_figures.py --split=test --ray_root_dir=$(pwd)/ray_results/ --data_dir=$(pwd)/data/audio-mnist

Writes figures to ``<results_dir>/figures`` (PDF and PNG) and tables to ``<results_dir>/tables``
(Markdown and LaTeX). Experiments that have not been run are skipped with a message.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from figures import audio_mnist, fma, gtzan, time_frequency
from figures.results import load_experiment

# modules with produce(load, split, figure_dir, table_dir)
FIGURES = (time_frequency, audio_mnist, gtzan, fma)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("test", "valid"), default="test")
    p.add_argument("--ray_root_dir", default="ray_results")
    p.add_argument("--data_dir", default="data/audio-mnist", help="accepted for the original command line")
    p.add_argument("--results_dir", default="results")
    args = p.parse_args(argv)
    fig_dir, table_dir = Path(args.results_dir) / "figures", Path(args.results_dir) / "tables"

    def load(name):
        exp_dir = Path(args.ray_root_dir) / name
        if not exp_dir.is_dir():
            print(f"{name}: no experiment at {exp_dir.resolve()}; skipped (run main.py --name={name})")
            return None
        df, histories = load_experiment(exp_dir)
        if df.empty:
            print(f"{name}: no finished trials yet; skipped")
            return None
        return df, histories

    for module in FIGURES:
        module.produce(load, args.split, fig_dir, table_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
