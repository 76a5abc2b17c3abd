"""The summary table of an experiment that has no figures module of its own (its record's ``figures`` is
``None``, ``tuning.experiments``): ``<split>_<name>`` in the tables folder, nothing drawn.

One row per configuration: the front-end's label (its registry record, :mod:`figures.labels`) and the
value of every grid axis that varies across the experiment's trials (the seed apart: the row's samples),
axes in key order;
then the accuracy ``mean ± std`` over the finished samples, ``finished/total`` and the cost. A ``-`` in an
axis column: that trial's configuration does not set the key (it runs the key's default).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from figures.labels import is_unset, with_frontends
from figures.provenance import source_line
from figures.read import finished
from figures.tables import COST_COLUMN, cost, count, mean_std, write_table

# config columns never shown as axes: the seed is what a row averages over, the front-end is its label,
# the variant dicts are flattened into their keys (figures.read), paths say where, not what
HIDDEN = ("config/seed", "config/frontend", "config/data_dir", "config/cache_dir")


def cell(value) -> str:
    """An axis value as table text: ``-`` unset, numbers in ``:g`` (``0.001``, ``25``), else ``str``."""
    if is_unset(value):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{value:g}"
    return str(value)


def varying_axes(df: pd.DataFrame) -> list[str]:
    """The ``config/<key>`` columns whose value (as :func:`cell` shows it) is not the same for every trial,
    sorted by key, without :data:`HIDDEN` and the ``config/variant*`` dicts."""
    columns = sorted(c for c in df.columns if c.startswith("config/") and c not in HIDDEN and "/" not in c[7:]
                     and not c[7:].startswith("variant"))
    return [c for c in columns if df[c].map(cell).nunique() > 1]


def _order(text: str):
    """Sort key of an axis cell: numbers by value, before words; ``-`` last."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (2, 0.0, "") if text == "-" else (1, 0.0, text)


def summary_table(everything: pd.DataFrame, acc_col: str, acc_name: str) -> pd.DataFrame:
    """One row per (front-end label, value of each varying axis) of ``everything`` (every trial, finished or
    not; ``frontend`` holds the labels, :func:`figures.labels.with_frontends`), rows sorted by those
    values; ``acc_col`` as ``mean ± std`` in % over the finished trials under ``acc_name``."""
    axes = varying_axes(everything)
    keys = pd.DataFrame({"front-end": everything["frontend"], **{c[7:]: everything[c].map(cell) for c in axes}},
                        index=everything.index)
    rows = []
    for key, part in everything.groupby([keys[c] for c in keys], sort=False):
        done = finished(part)
        values = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys.columns, values)), acc_name: mean_std(done[acc_col]) if acc_col in done else "-",
                     "n finished/total": count(part), COST_COLUMN: cost(part)})
    rows.sort(key=lambda r: tuple(_order(r[c]) for c in keys.columns))
    return pd.DataFrame(rows, columns=[*keys.columns, acc_name, "n finished/total", COST_COLUMN])


def produce(load, split: str, out_dir: Path, table_dir: Path, name: str) -> None:
    """``load(name)`` gives ``(df, histories)`` of the experiment ``name`` or ``None``; writes its table."""
    loaded = load(name)
    if loaded is None:
        return
    everything = with_frontends(loaded[0])
    acc_col, acc_name = ("test_accuracy", "test acc %") if split == "test" else ("best_valid_acc", "valid acc %")
    write_table(summary_table(everything, acc_col, acc_name), table_dir, f"{split}_{name}",
                f"{name}, {split} accuracy per configuration, mean ± std over the finished samples (seeds); "
                "n: finished/total trials; -: not set by that configuration.", source_line(everything))


def for_experiment(name: str):
    """:func:`produce` for the experiment ``name``: a ``produce(load, split, out_dir, table_dir)``."""
    return functools.partial(produce, name=name)
