"""Table cells and table files: mean ± std, cost and counts, the paired trainable-vs-fixed columns, and
:func:`write_table`, which writes every table as Markdown, LaTeX and JSON (the JSON is what the HTML
report reads, figures/report.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import DataRow, TableFormat, tabulate

from figures.paired import PairedStats, difference_cell, paired_difference, wilcoxon_cell
from figures.read import ended, finished


def mean_std(values: pd.Series, scale: float = 100.0) -> str:
    """``'mean ± std'`` of ``values * scale`` with one decimal (std over samples, ddof=1)."""
    v = values.dropna() * scale
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v.iloc[0]:.1f}"  # one sample: no spread to show
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


COST_COLUMN = "cost: s/trial, epochs (mean)"
PAIRED_COST_COLUMN = "cost: s/trial, epochs (trainable; fixed)"


def cost(part: pd.DataFrame) -> str:
    """``"<s> s, <epochs> ep"``: mean training time per trial (Tune's ``time_total_s``, seconds) and mean
    epochs run (the trial's ``epoch`` + 1, else Tune's ``training_iteration``) over the trials of ``part``
    that ended (:func:`ended`; an unfinished or errored trial has not paid its whole cost). ``"-"`` when
    none ended, ``"not recorded"`` when the results hold no time."""
    if "time_total_s" not in part:
        return "not recorded"
    done = ended(part)
    epochs = done["epoch"] + 1 if "epoch" in done else done.get("training_iteration")
    if done["time_total_s"].notna().sum() == 0 or epochs is None:
        return "-"
    return f"{done['time_total_s'].mean():.1f} s, {epochs.mean():.1f} ep"


def mean_std_cell(done: pd.DataFrame, column: str) -> str:
    """:func:`mean_std` of ``done[column]`` in %; ``-`` when ``done`` has no such column (results from before
    the metric existed, e.g. ``test_uar``)."""
    return mean_std(done[column]) if column in done else "-"


def count(part: pd.DataFrame) -> str:
    """``"finished/total"`` trials of ``part`` (:func:`figures.read.finished`)."""
    return f"{len(finished(part))}/{len(part)}"


def uar_column(split: str) -> tuple[str, str]:
    """``(metric, column name)`` of the unweighted average recall (balanced accuracy) of ``split``: the test
    split's ``test_uar``, else the best epoch's ``best_valid_uar``."""
    return ("test_uar", "test UAR %") if split == "test" else ("best_valid_uar", "valid UAR %")


# the model statistics columns (models/stats.py: recorded in a trial's last report)
PARAMS_COLUMN = "learnable front-end params"
FLOPS_COLUMN = "MFLOP/input (front-end + head)"
LATENCY_COLUMN = "CPU ms/input"
STAT_COLUMNS = (PARAMS_COLUMN, FLOPS_COLUMN, LATENCY_COLUMN)  # in the order of the tables


def _mean(done: pd.DataFrame, column: str) -> float | None:
    """The mean of ``column`` over ``done``'s rows that hold a number in it, ``None`` without any."""
    if column not in done:
        return None
    values = pd.to_numeric(done[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def _digits(value: float) -> str:
    """3 significant digits, in whole numbers from 1000 up (``0.0883``, ``12.5``, ``6605``: never ``6.6e+03``)."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def model_stat_cells(part: pd.DataFrame) -> dict[str, str]:
    """The model statistics of ``part``'s finished trials, means over those that recorded them (a config's
    trials share their parameters; a window that changed size changes the FLOPs): :data:`PARAMS_COLUMN`
    (the learnable front-end parameters, ``params_frontend_learnable``), :data:`FLOPS_COLUMN`
    (``flops_frontend`` + ``flops_head`` in 10^6 FLOPs, a multiply-add counted as 2) and
    :data:`LATENCY_COLUMN` (``latency_ms_cpu``, one thread), both to 3 significant digits (:func:`_digits`);
    ``-`` for a number no finished trial recorded (trials from before models/stats.py, a scikit-learn head)."""
    done = finished(part)
    params, latency = _mean(done, "params_frontend_learnable"), _mean(done, "latency_ms_cpu")
    frontend, head = _mean(done, "flops_frontend"), _mean(done, "flops_head")
    flops = "-" if frontend is None or head is None else f"{_digits(frontend / 1e6)} + {_digits(head / 1e6)}"
    return {PARAMS_COLUMN: "-" if params is None else f"{params:.0f}", FLOPS_COLUMN: flops,
            LATENCY_COLUMN: "-" if latency is None else _digits(latency)}


def stats_caption(of: str = "means over the finished trials") -> str:
    """A caption's sentence on the model statistics columns; ``of``: which trials' numbers they are."""
    return (f" Model statistics (models/stats.py), {of} (-: not recorded): learnable front-end parameters; MFLOP "
            "per model input (one segment), front-end + head (a multiply-add counted as 2 FLOPs, FFTs at "
            "2.5 N log2 N); CPU latency per input on one thread (ms, median).")


# the DMEL tables' caption on their UAR and model statistics columns
PAIRED_STATS_CAPTION = " UAR: unweighted average recall." + stats_caption(
    "means over the finished trainable runs; over the fixed ones")
# the model statistics columns of the DMEL tables: the trainable runs', then the fixed runs'
PAIRED_STAT_COLUMNS = {column: f"{column} (trainable; fixed)" for column in STAT_COLUMNS}


def paired_model_stat_cells(trainable: pd.DataFrame, fixed: pd.DataFrame) -> dict[str, str]:
    """:func:`model_stat_cells` of the ``trainable`` runs, then of the ``fixed`` ones, as ``"trainable; fixed"``
    under the names of :data:`PAIRED_STAT_COLUMNS` (a trainable DMEL window has 1 learnable parameter, a fixed
    one 0; a window that grew costs more FLOPs)."""
    tr, fx = model_stat_cells(trainable), model_stat_cells(fixed)
    return {paired: f"{tr[column]}; {fx[column]}" for column, paired in PAIRED_STAT_COLUMNS.items()}


# the paired columns of the DMEL tables (trainable minus fixed runs of one seed; figures/paired.py)
PAIRED_DIFF_COLUMN = "Δ trainable−fixed (pp) [95 % CI]"
PAIRED_TEST_COLUMN = "p (Wilcoxon), n"
PAIRED_CAPTION = (" Δ: trainable minus fixed accuracy of the runs that share a seed (pp), mean and"
                  " percentile-bootstrap 95 % CI; p: two-sided Wilcoxon signed-rank test over those pairs; n: pairs.")


def trainable_fixed_pairs(part: pd.DataFrame, acc_col: str, unit: str | None = None) -> pd.DataFrame:
    """The trainable/fixed pairs of one table row: one row per pair, ``trainable`` and ``fixed`` the
    ``acc_col`` of its two trials in % (x 100).

    A pair is a finished trainable and a finished fixed trial (:func:`finished`, with a number in
    ``acc_col``) whose ``config/*`` values are equal apart from ``trainable``: the same seed, and the
    same value of any other grid setting inside the row. A seed present on one side only pairs nothing,
    nor does a key that more than one trial of a side holds. Rows in ascending ``config/seed``, then the
    other keys. ``unit`` (e.g. ``"config/fold"``): one row per value of ``unit`` instead, ``trainable``
    and ``fixed`` the means over that value's pairs, rows in ascending ``unit``."""
    done = finished(part)
    done = done[done[acc_col].notna()] if acc_col in done else done.iloc[:0]
    keys = [c for c in part.columns if c.startswith("config/") and c.rsplit("/", 1)[-1] != "trainable"]
    key = pd.Series(["\x1f".join(map(str, row)) for row in done[keys].itertuples(index=False)], index=done.index,
                    dtype=object)
    carried = [c for c in dict.fromkeys((unit, "config/seed")) if c is not None and c in done]
    sides = []
    for trainable in (True, False):
        mine = done["config/trainable"] == trainable  # noqa: E712 - a bool column, or None where unset
        # a new frame: the experiment's attrs (a DataFrame of trials) cannot pass through merge
        side = pd.DataFrame({"key": key[mine].to_numpy(), "acc": done.loc[mine, acc_col].to_numpy(dtype=float) * 100.0,
                             **{c: done.loc[mine, c].to_numpy() for c in carried}})
        sides.append(side.drop_duplicates("key", keep=False))  # an ambiguous key pairs nothing
    pairs = sides[0].merge(sides[1].drop(columns=carried), on="key", suffixes=("_trainable", "_fixed"))
    pairs = pairs.rename(columns={"acc_trainable": "trainable", "acc_fixed": "fixed"})
    if unit is not None:
        return pairs.groupby(unit, sort=True)[["trainable", "fixed"]].mean().reset_index()
    order = [c for c in ("config/seed",) if c in pairs] + ["key"]
    return pairs.sort_values(order, kind="stable").drop(columns="key").reset_index(drop=True)


def paired_stats(part: pd.DataFrame, acc_col: str, unit: str | None = None) -> PairedStats:
    """:func:`figures.paired.paired_difference` of trainable minus fixed ``acc_col`` in percentage points over
    the pairs of :func:`trainable_fixed_pairs` (``unit`` as there)."""
    pairs = trainable_fixed_pairs(part, acc_col, unit)
    return paired_difference(pairs["trainable"], pairs["fixed"])


def trainable_vs_fixed(part: pd.DataFrame, acc_col: str, learned_col: str, fmt: str, unit: str | None = None,
                       uar_col: str | None = None) -> dict:
    """Summary of one (model, initial window) group: learned window ``(min, max)`` over finished trainable
    runs (``fmt`` formats one value), accuracy ``mean ± std`` of finished trainable and fixed runs (with
    ``uar_col``, the unweighted average recall (:func:`uar_column`), the same way as ``trainable_uar`` and
    ``fixed_uar``; ``-`` where the results do not hold it),
    ``n``: ``"finished/total"`` of the trainable runs, then of the fixed ones (unfinished rows count in
    the totals only), ``cost``: :func:`cost` of the trainable runs, then of the fixed ones (the column
    :data:`PAIRED_COST_COLUMN`), and the paired statistics of trainable minus fixed accuracy in
    percentage points over :func:`trainable_fixed_pairs` (``unit`` as there): ``difference`` (the column
    :data:`PAIRED_DIFF_COLUMN`, :func:`figures.paired.difference_cell`) and ``wilcoxon``
    (:data:`PAIRED_TEST_COLUMN`, :func:`figures.paired.wilcoxon_cell`; the count in ``unit`` values,
    e.g. ``"n=5 folds"``, when given); ``stats``: :func:`paired_model_stat_cells`, by column."""
    tr, fx = part[part["config/trainable"] == True], part[part["config/trainable"] == False]  # noqa: E712
    tr_done, fx_done = finished(tr), finished(fx)
    learned = (f"({tr_done[learned_col].min():{fmt}}, {tr_done[learned_col].max():{fmt}})"
               if len(tr_done) and tr_done[learned_col].notna().any() else "-")
    paired = paired_stats(part, acc_col, unit)
    uar = {} if uar_col is None else {"trainable_uar": mean_std_cell(tr_done, uar_col),
                                      "fixed_uar": mean_std_cell(fx_done, uar_col)}
    return {"learned": learned, "trainable": mean_std_cell(tr_done, acc_col), "fixed": mean_std_cell(fx_done, acc_col),
            **uar, "n": f"{count(tr)}, {count(fx)}", "cost": f"{cost(tr)}; {cost(fx)}",
            "difference": difference_cell(paired),
            "wilcoxon": wilcoxon_cell(paired, f" {unit.rsplit('/', 1)[-1]}s" if unit else ""),
            "stats": paired_model_stat_cells(tr, fx)}


def _latex_escape(text: str) -> str:
    """``text`` for LaTeX (pdflatex): its special characters escaped; ``<``, ``>`` and the non-ASCII symbols
    of the tables (``±``, ``−``, ``Δ``, ``λ``, ``σ``) in math mode."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
               "<": "$<$", ">": "$>$", "±": r"$\pm$", "−": "$-$", "Δ": r"$\Delta$", "λ": r"$\lambda$",
               "σ": r"$\sigma$"}
    return "".join(special.get(c, c) for c in str(text))


def _is_number(cell) -> bool:
    try:
        float(cell)
        return True
    except (TypeError, ValueError):
        return False


# tabulate's rendering of the cells without the pipes and padding of the Markdown: one cell per \x1f-separated
# field, so the JSON holds exactly the text the Markdown shows (a cell may contain "|")
_CELLS = TableFormat(lineabove=None, linebelowheader=None, linebetweenrows=None, linebelow=None,
                     headerrow=DataRow("", "\x1f", ""), datarow=DataRow("", "\x1f", ""), padding=0,
                     with_header_hide=None)


def table_cells(df: pd.DataFrame, align: list[str]) -> tuple[list[str], list[list[str]]]:
    """``(columns, rows)``: the header and cell texts of ``df`` as its Markdown table shows them
    (tabulate's text of each value, without the padding)."""
    text = tabulate(df, headers="keys", tablefmt=_CELLS, showindex=False, disable_numparse=True, colalign=align)
    lines = [[cell.strip() for cell in line.split("\x1f")] for line in text.split("\n")]
    return lines[0], lines[1:]


def write_table(df: pd.DataFrame, out_dir: Path, stem: str, caption: str, source: str | list[str] | None = None) -> None:
    """Write ``df`` as ``<stem>.md``, ``<stem>.tex`` and ``<stem>.json`` into ``out_dir``; ``source`` (see
    :func:`figures.provenance.source_line`) is written under the table. The LaTeX cells, headers and caption
    are escaped (:func:`_latex_escape`). The JSON holds ``caption``, ``columns``, ``align`` (``left`` or
    ``right`` per column), ``rows`` (lists of cell texts, exactly as in the Markdown) and ``sources`` (the
    lines under the table)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [source] if isinstance(source, str) else list(source or [])
    below = "".join(f"\n{line}\n" for line in sources)
    # cells as computed ("94.0" stays "94.0"; tabulate would print it as 94), numbers right-aligned
    align = ["right" if df[c].map(_is_number).all() else "left" for c in df.columns]
    markdown = df.to_markdown(index=False, disable_numparse=True, colalign=align)
    (out_dir / f"{stem}.md").write_text(f"{caption}\n\n{markdown}\n{below}")
    escaped = df.map(_latex_escape).rename(columns=_latex_escape)
    tex = escaped.to_latex(index=False, escape=False, caption=_latex_escape(caption), label=f"tab:{stem}")
    if sources:
        note = "\n".join(r"\par\footnotesize " + _latex_escape(line) for line in sources)
        tex = tex.replace("\\end{table}", note + "\n\\end{table}")
    (out_dir / f"{stem}.tex").write_text(tex)
    columns, rows = table_cells(df, align)
    structured = {"caption": caption, "columns": columns, "align": align, "rows": rows, "sources": sources}
    (out_dir / f"{stem}.json").write_text(json.dumps(structured, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out_dir / stem}.md/.tex/.json")
