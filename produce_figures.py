"""Figures and tables from the experiments on disk (no retraining).

    python produce_figures.py --split=test --ray_root_dir=$(pwd)/ray_results/ --data_dir=$(pwd)/data/audio-mnist
    python produce_figures.py --split=test --storage=s3://bucket/prefix     # experiments at <storage>/<name>

Experiments are read from ``<storage>/<name>``; ``--storage`` is a local folder or a URI
(``file:///abs/path``, ``s3://bucket/prefix``, ``s3://bucket/prefix?endpoint_override=host:port&scheme=http``;
S3 credentials come from the usual AWS environment variables) and defaults to ``--ray_root_dir``.
Every registered experiment (``tuning.experiments``, in registration order) is drawn by the module its
record names (``figures``), each module once; one without a module gets the summary table of
``figures/generic.py``. Writes figures to ``<results_dir>/figures`` (PDF and PNG), tables to
``<results_dir>/tables`` (Markdown, LaTeX and JSON), and one self-contained page with all of them,
``<results_dir>/index.html`` (figures/report.py, from the JSON). Experiments that have not been run are skipped with a message. Unfinished and
errored trials are left out of the numbers and named; each table's ``n`` is finished/total and a line
under it gives the experiment, its trials, the budget and the code's git commit.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import sys
from pathlib import Path
from typing import Callable

from figures import generic
from figures.provenance import missing_trials
from figures.read import UnreadableExperiment, finished, load_experiment
from figures.report import write_report
from tuning.experiments import get_experiment, list_experiments
from tuning.storage import display as display_location
from tuning.storage import experiment_location


def figure_producers() -> list[tuple[str, Callable]]:
    """``(name, produce)`` for every registered experiment, in registration order, where ``produce(load,
    split, figure_dir, table_dir)`` draws it: its record's ``figures`` module (each module once: one module
    may draw several experiments), else the generic table of :mod:`figures.generic`."""
    producers, seen = [], set()
    for name in list_experiments():
        module = get_experiment(name).figures
        if module is None:
            producers.append((f"{generic.__name__} ({name})", generic.for_experiment(name)))
        elif module not in seen:
            seen.add(module)
            producers.append((module, functools.partial(_module_produce, module)))
    return producers


def _module_produce(module: str, load, split: str, figure_dir: Path, table_dir: Path) -> None:
    """``<module>.produce(...)``, imported here: a module that fails to import stops only its own figures."""
    importlib.import_module(module).produce(load, split, figure_dir, table_dir)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("test", "valid"), default="test")
    p.add_argument("--ray_root_dir", default="ray_results")
    p.add_argument("--storage", default=None,
                   help="where the experiments are: a folder or a URI (s3://bucket/prefix, file:///abs/path); "
                        "default --ray_root_dir")
    p.add_argument("--data_dir", default="data/audio-mnist", help="accepted for the original command line")
    p.add_argument("--results_dir", default="results")
    args = p.parse_args(argv)
    fig_dir, table_dir = Path(args.results_dir) / "figures", Path(args.results_dir) / "tables"
    storage = args.storage or args.ray_root_dir

    def load(name):
        location = experiment_location(storage, name)
        try:
            df, histories = load_experiment(location, keep_unfinished=True)
        except FileNotFoundError:
            print(f"{name}: no experiment at {display_location(location)}; skipped (run main.py --name={name.split('/')[0]})")
            return None
        except UnreadableExperiment as e:
            print(f"{name}: {e}; skipped")
            return None
        missing = missing_trials(df)
        if missing:
            print(f"{name}: {len(missing)} of {len(df.attrs['trials'])} trials not finished, left out of the "
                  f"numbers (rerun main.py --name={name.split('/')[0]} to resume): " + ", ".join(missing))
        if finished(df).empty:
            print(f"{name}: no finished trials yet; skipped")
            return None
        return df, histories

    failed = []
    for label, produce in figure_producers():
        try:
            produce(load, args.split, fig_dir, table_dir)
        except Exception as e:  # noqa: BLE001 - one broken experiment must not cost the others their figures
            failed.append(label)
            print(f"{label}: stopped by {type(e).__name__}: {e}; the other experiments go on")
    write_report(Path(args.results_dir) / "index.html", fig_dir, table_dir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
