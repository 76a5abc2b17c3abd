"""The summary table of an experiment that has no figures module of its own (its record's ``figures`` is
``None``, ``tuning.experiments``): ``<split>_<name>`` in the tables folder, nothing drawn.

One row per configuration: the front-end's label (its registry record, :mod:`figures.labels`) and the
value of every grid axis that varies across the experiment's trials (the seed apart: the row's samples),
axes in key order;
then the accuracy and the unweighted average recall (UAR, balanced accuracy) ``mean ± std`` over the finished
samples, ``finished/total``, the cost, and the model's statistics (:func:`figures.tables.model_stat_cells`:
learnable front-end parameters, MFLOP per input for the front-end and the head, CPU latency per input;
models/stats.py). A ``-`` in an axis column: that trial's configuration does not set the key (it runs the
key's default); in a statistics column: no finished trial recorded it.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from figures.labels import is_unset, with_frontends
from figures.provenance import source_line
from figures.read import finished
from figures.tables import COST_COLUMN, STAT_COLUMNS, cost, count, mean_std, model_stat_cells, stats_caption, \
    uar_column, write_table

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


def summary_table(everything: pd.DataFrame, acc_col: str, acc_name: str, uar: tuple[str, str] | None = None,
                  stats: bool = False) -> pd.DataFrame:
    """One row per (front-end label, value of each varying axis) of ``everything`` (every trial, finished or
    not; ``frontend`` holds the labels, :func:`figures.labels.with_frontends`), rows sorted by those
    values; ``acc_col`` as ``mean ± std`` in % over the finished trials under ``acc_name``; ``uar``
    ``(metric, column name)`` (:func:`figures.tables.uar_column`) the same way beside it; ``stats``: the model
    statistics columns after the cost (:func:`figures.tables.model_stat_cells`)."""
    axes = varying_axes(everything)
    keys = pd.DataFrame({"front-end": everything["frontend"], **{c[7:]: everything[c].map(cell) for c in axes}},
                        index=everything.index)
    rows = []
    for key, part in everything.groupby([keys[c] for c in keys], sort=False):
        done = finished(part)
        values = key if isinstance(key, tuple) else (key,)
        row = {**dict(zip(keys.columns, values)), acc_name: mean_std(done[acc_col]) if acc_col in done else "-"}
        if uar is not None:
            row[uar[1]] = mean_std(done[uar[0]]) if uar[0] in done else "-"
        row.update({"n finished/total": count(part), COST_COLUMN: cost(part)})
        if stats:
            row.update(model_stat_cells(part))
        rows.append(row)
    rows.sort(key=lambda r: tuple(_order(r[c]) for c in keys.columns))
    columns = [*keys.columns, acc_name, *([uar[1]] if uar is not None else []), "n finished/total", COST_COLUMN,
               *(STAT_COLUMNS if stats else ())]
    return pd.DataFrame(rows, columns=columns)


def produce(load, split: str, out_dir: Path, table_dir: Path, name: str) -> None:
    """``load(name)`` gives ``(df, histories)`` of the experiment ``name`` or ``None``; writes its table."""
    loaded = load(name)
    if loaded is None:
        return
    everything = with_frontends(loaded[0])
    acc_col, acc_name = ("test_accuracy", "test acc %") if split == "test" else ("best_valid_acc", "valid acc %")
    write_table(summary_table(everything, acc_col, acc_name, uar_column(split), stats=True), table_dir,
                f"{split}_{name}",
                f"{name}, {split} accuracy and unweighted average recall (UAR) per configuration, mean ± std over the "
                "finished samples (seeds); n: finished/total trials; -: not set by that configuration (or not "
                "recorded)." + stats_caption(),
                source_line(everything))


def for_experiment(name: str):
    """:func:`produce` for the experiment ``name``: a ``produce(load, split, out_dir, table_dir)``."""
    return functools.partial(produce, name=name)
