"""The tables' independent reader: every cell of every experiment's Markdown table recomputed from the trial
folders with plain ``json``, never through the project's readers (``figures/``, pandas).

A trial folder (``train_trial_*``) holds ``params.json`` (the config Tune drew), ``result.json`` (one JSON
row per report, the last one the trial's final state) and its checkpoints' ``config.json`` (the config with
every default filled in: read only for a key the grid never set). A trial *ended* when its last row says
``done``; it *finished* when it was also tested (a number in ``test_loss``), else a scheduler stopped it early.

:func:`assert_tables` is the entry point: it reads an experiment, builds the table that
``produce_figures.py --split=<split>`` must have written (``expected_<name>``: the header, one dict per
row, the lines under the table) and compares ``<table_dir>/<split>_<name>.md`` with it, cell by cell.
The published numbers and anchors are written out here, from the papers (``dmel-paper-notes.md``).
"""
from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ------------------------------------------------------------------------------------------ the trials


@dataclass
class Trial:
    """One trial folder: ``config`` its params.json with the ``variant*`` dicts of a variant grid merged
    in, ``rows`` every result.json row, ``resolved`` its last checkpoint's config.json (``{}`` without one)."""
    name: str
    config: dict
    rows: list[dict]
    resolved: dict

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    @property
    def ended(self) -> bool:
        return bool(self.last.get("done"))

    @property
    def finished(self) -> bool:
        return self.ended and is_number(self.last.get("test_loss"))

    def setting(self, key: str):
        """The trial's value of config ``key``: params.json's, else (a key the grid never set) the resolved one."""
        value = self.config.get(key)
        return self.resolved[key] if value is None else value


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_trials(exp: Path) -> list[Trial]:
    """Every trial of the experiment folder ``exp``, in folder order; a trial whose result.json is absent
    or empty has no rows (it never reported)."""
    out = []
    for d in sorted(Path(exp).glob("train_trial_*")):
        params = json.loads((d / "params.json").read_text())
        config = {k: v for k, v in params.items() if not (k.startswith("variant") and isinstance(v, dict))}
        for k, v in params.items():
            if k.startswith("variant") and isinstance(v, dict):
                config.update(v)
        result = d / "result.json"
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()] if result.exists() else []
        checkpoints = sorted(d.glob("checkpoint_*/config.json"))
        resolved = json.loads(checkpoints[-1].read_text()) if checkpoints else {}
        out.append(Trial(d.name, config, rows, resolved))
    return out


# --------------------------------------------------------------------------------------- the cells


def mean_std(values) -> str:
    """``"mean ± std"`` of the numbers among ``values`` (fractions) in %, one decimal, std with ddof 1;
    one number alone, ``"-"`` for none."""
    v = np.array([x for x in values if is_number(x)], dtype=float) * 100
    if len(v) == 0:
        return "-"
    return f"{v[0]:.1f}" if len(v) == 1 else f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


def count(trials: list[Trial]) -> str:
    return f"{sum(t.finished for t in trials)}/{len(trials)}"


def cost(trials: list[Trial]) -> str:
    """Mean ``time_total_s`` and mean epochs run (``epoch`` + 1) of the trials that ended."""
    rows = [t.last for t in trials if t.ended]
    if not rows:
        return "-"
    return f"{np.mean([r['time_total_s'] for r in rows]):.1f} s, {np.mean([r['epoch'] + 1 for r in rows]):.1f} ep"


def uar_column(split: str) -> str:
    """The unweighted average recall a table shows beside the accuracy of ``split``."""
    return "test_uar" if split == "test" else "best_valid_uar"


def _mean_of(trials: list[Trial], key: str):
    """The mean of the numbers the finished ``trials`` recorded under ``key`` (``None`` for none)."""
    v = [t.last[key] for t in trials if t.finished and is_number(t.last.get(key))]
    return float(np.mean(v)) if v else None


def digits3(value: float) -> str:
    """3 significant digits; from 1000 up, the whole number."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{round(value)}"


def model_stats(trials: list[Trial]) -> dict:
    """The three model-statistics cells (models/stats.py's keys in the last reports, finished trials): the
    learnable front-end parameters, front-end + head MFLOP (3 significant digits each), CPU ms (3 digits)."""
    params, latency = _mean_of(trials, "params_frontend_learnable"), _mean_of(trials, "latency_ms_cpu")
    frontend, head = _mean_of(trials, "flops_frontend"), _mean_of(trials, "flops_head")
    return {"learnable front-end params": "-" if params is None else f"{params:.0f}",
            "MFLOP/input (front-end + head)": "-" if frontend is None or head is None
            else f"{digits3(frontend / 1e6)} + {digits3(head / 1e6)}",
            "CPU ms/input": "-" if latency is None else digits3(latency)}


def paired_model_stats(trainable: list[Trial], fixed: list[Trial]) -> dict:
    """The DMEL tables' model-statistics cells: :func:`model_stats` of the trainable trials, then of the fixed
    ones, ``"trainable; fixed"``, under ``"<column> (trainable; fixed)"``."""
    tr, fx = model_stats(trainable), model_stats(fixed)
    return {f"{c} (trainable; fixed)": f"{tr[c]}; {fx[c]}" for c in tr}


def span(values, fmt: str) -> str:
    """``"(min, max)"`` of the numbers among ``values``, each formatted with ``fmt``; ``"-"`` for none."""
    v = [x for x in values if is_number(x)]
    return f"({min(v):{fmt}}, {max(v):{fmt}})" if v else "-"


def gaussian_ms(t: Trial) -> float:
    """The initial Gaussian window 6 lambda in ms to one decimal: ``init_window_ms``, else from ``init_lambd``."""
    ms = t.config.get("init_window_ms")
    return round(ms if ms is not None else 6000.0 * t.setting("init_lambd") / t.setting("sample_rate"), 1)


def window_ms(t: Trial) -> float:
    """The initial window in ms to one decimal: 6 lambda (DMEL, DSTFT), n_fft (Ada-STFT), else the
    front-end's own window key."""
    kind = t.setting("frontend")
    if kind in ("gaussian", "dstft"):
        return gaussian_ms(t)
    if kind == "adastft":
        return round(1000.0 * t.setting("n_fft") / t.setting("sample_rate"), 1)
    key = {"leaf": "leaf_window_ms", "efficientleaf": "leaf_window_ms", "sincnet": "sinc_window_ms"}
    return round(t.setting(key.get(kind, "fixed_win_ms")), 1)


NAMES = {"torchaudio_mel": "fixed mel", "trainable_mel": "trainable mel", "leaf": "LEAF", "efficientleaf": "EfficientLEAF",
         "sincnet": "SincNet", "dstft": "DSTFT"}
LEAF_COMPRESSION = {"pcen": "", "log_tbn": " (log+TBN)", "log_tbn_median": " (log+TBN, median)"}


def frontend_label(t: Trial) -> str:
    """The front-end's name in the tables."""
    kind = t.setting("frontend")
    pcen = " + PCEN" if t.setting("compression") == "pcen" else ""
    if kind == "gaussian":
        return ("DMEL trainable" if t.setting("trainable") else "DMEL fixed") + pcen
    if kind == "adastft":
        learned = "window+kernels" if t.setting("learn_kernels") else "window" if t.setting("learn_window") else "fixed"
        window = t.setting("stft_window")
        return f"Ada-STFT {learned}" + ("" if window == "hann" else f" ({window})") + pcen
    if kind == "torchaudio_mel":
        return ("fixed mel (dB)" if t.setting("top_db") is not None else "fixed mel") + pcen
    if kind in ("leaf", "efficientleaf"):
        return NAMES[kind] + LEAF_COMPRESSION[t.setting("leaf_compression")]
    return NAMES[kind] + pcen


def group(trials: list[Trial], key) -> dict:
    """``{key(t): [trials]}`` in sorted key order."""
    out: dict = {}
    for t in trials:
        out.setdefault(key(t), []).append(t)
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------ paired trainable vs fixed

# figures/paired.py's documented recipe: differences rounded to 9 decimals; 10,000 bootstrap resamples of
# the pairs drawn by numpy.random.default_rng(0).integers(0, n, (10000, n)), the interval the 2.5th and
# 97.5th percentiles of the resampled means
DECIMALS, RESAMPLES, SEED = 9, 10_000, 0


def pairs(trials: list[Trial], acc: str, unit: str | None = None) -> list[tuple[float, float]]:
    """``(trainable %, fixed %)`` per pair: a finished trainable and a finished fixed trial with a number in
    ``acc`` whose params.json are equal apart from ``trainable`` (a config present twice on one side pairs
    nothing); in ascending seed. ``unit`` (``"fold"``): one mean pair per value of ``unit``, ascending."""
    def key(t):
        return json.dumps({k: v for k, v in t.config.items() if k != "trainable"}, sort_keys=True)

    sides = []
    for trainable in (True, False):
        mine = [t for t in trials if t.finished and is_number(t.last.get(acc)) and t.setting("trainable") == trainable]
        keys = [key(t) for t in mine]
        sides.append({k: t for k, t in zip(keys, mine) if keys.count(k) == 1})
    matched = [(sides[0][k], sides[1][k]) for k in sides[0] if k in sides[1]]
    if unit is None:
        seeds = [tr.config.get("seed") for tr, _ in matched]
        assert len(set(seeds)) == len(seeds), "two pairs of one seed in a row: their order is not pinned here"
        matched.sort(key=lambda p: p[0].config.get("seed"))
        return [(100 * tr.last[acc], 100 * fx.last[acc]) for tr, fx in matched]
    by_unit = group(matched, lambda p: p[0].config[unit])
    return [(float(np.mean([100 * tr.last[acc] for tr, _ in ps])), float(np.mean([100 * fx.last[acc] for _, fx in ps])))
            for ps in by_unit.values()]


def signed_rank_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of the differences ``d`` (shape ``(n,)``), exactly: zeros dropped,
    tied |d| at their average rank, the sum of the positive ranks against its value under every one of
    the 2^m sign assignments of the m non-zero differences (twice the smaller tail, at most 1)."""
    d = d[d != 0]
    if len(d) == 0:
        return 1.0
    assert len(d) <= 10, "exact for the tests' small experiments (figures/paired.py: exact up to 10 tied differences)"
    a = np.abs(d)
    ranks = np.array([1 + np.sum(a < v) + (np.sum(a == v) - 1) / 2 for v in a])
    observed = ranks[d > 0].sum()
    sums = np.array([ranks[list(signs)].sum() for signs in itertools.product((False, True), repeat=len(d))])
    return min(1.0, 2 * min(np.mean(sums >= observed), np.mean(sums <= observed)))


def paired_cells(trials: list[Trial], acc: str, unit: str | None = None) -> tuple[str, str]:
    """The paired columns: ``"+mean [low, high]"`` (pp, one decimal) and ``"p=0.123, n=4"`` (``"p<0.001"``
    below 0.001; ``" folds"`` after the count with ``unit``); ``"n/a"`` for each statistic below 2 pairs."""
    p = pairs(trials, acc, unit)
    suffix = f" {unit}s" if unit else ""
    if len(p) < 2:
        return "n/a", f"n/a, n={len(p)}{suffix}"
    d = np.round(np.array([a - b for a, b in p]), DECIMALS)
    index = np.random.default_rng(SEED).integers(0, len(d), size=(RESAMPLES, len(d)))
    low, high = np.percentile(d[index].mean(axis=1), [2.5, 97.5])
    pvalue = signed_rank_p(d)
    return (f"{d.mean():+.1f} [{low:+.1f}, {high:+.1f}]",
            f"{'p<0.001' if pvalue < 0.001 else f'p={pvalue:.3f}'}, n={len(d)}{suffix}")


DIFF, TEST = "Δ trainable−fixed (pp) [95 % CI]", "p (Wilcoxon), n"
N_PAIRED, COST_PAIRED, COST = "n finished/total (trainable, fixed)", "cost: s/trial, epochs (trainable; fixed)", \
    "cost: s/trial, epochs (mean)"


def dmel_cells(part: list[Trial], acc: str, uar: str, learned: str, fmt: str, over_folds: bool = False) -> dict:
    """The cells a DMEL table row shares, keyed by column: accuracy and ``uar`` (``trainable_uar``,
    ``fixed_uar``) of the finished trainable and fixed trials (``over_folds``: of each fold's mean), the
    learned range (``learned`` of the finished trainable ones, ``fmt``), the paired columns, n, cost and
    the model statistics (``stats``; trainable; fixed)."""
    tr = [t for t in part if t.setting("trainable")]
    fx = [t for t in part if not t.setting("trainable")]

    def accuracy(side, key=acc):
        done = [t for t in side if t.finished]
        if not over_folds:
            return mean_std(t.last.get(key) for t in done)
        if not done:
            return "-"
        folds = group(done, lambda t: t.config["fold"]).values()
        means = [[t.last[key] for t in ts if is_number(t.last.get(key))] for ts in folds]
        return mean_std(np.mean(m) for m in means if m)

    diff, test = paired_cells(part, acc, "fold" if over_folds else None)
    n = f"{count(tr)}, {count(fx)}"
    if over_folds:
        n += f" ({len({t.config['fold'] for t in part})} folds)"
    return {"learned": span((t.last.get(learned) for t in tr if t.finished), fmt), "trainable": accuracy(tr),
            "fixed": accuracy(fx), DIFF: diff, TEST: test, "trainable_uar": accuracy(tr, uar),
            "fixed_uar": accuracy(fx, uar), N_PAIRED: n, COST_PAIRED: f"{cost(tr)}; {cost(fx)}",
            "stats": paired_model_stats(tr, fx)}


# --------------------------------------------------------------------------------- published numbers

# DMEL paper (Martinsson & Sandsten, ICASSP 2024), test accuracy %, 10 runs: init -> (learned, DMEL, fixed)
TABLE4 = {1.3: ("(4.8, 5.6)", "98.5 ± 0.2", "95.5 ± 0.2"), 6.4: ("(5.3, 6.0)", "98.5 ± 0.2", "98.8 ± 0.3"),
          31.9: ("(3.4, 6.5)", "98.0 ± 0.4", "94.9 ± 0.4")}  # synthetic, LNet, lambda_init (samples)
TABLE3 = {10: ("(314, 442)", "94.9 ± 1.0", "89.3 ± 1.0"), 35: ("(398, 484)", "95.0 ± 0.8", "91.9 ± 1.2"),
          300: ("(516, 608)", "95.3 ± 0.6", "95.3 ± 0.8")}  # AudioMNIST, LNet, init ms
TABLE2 = {10: ("(25, 27)", "87.3 ± 1.0", "84.2 ± 1.2"), 35: ("(31, 90)", "86.1 ± 1.3", "86.9 ± 0.7"),
          300: ("(117, 153)", "85.8 ± 1.2", "84.7 ± 1.1")}  # ESC-50, CNN6, init ms
# published anchors under the music tables: (system, setting, value in % under the first metric column)
GTZAN_ANCHORS = [("Ada-STFT (published)", "window+kernels, best valid", "64.0 (optuna trials plateau near 53)"),
                 ("VGGish + PCA + SVM (jordipons)", "filtered test split", "77.6"),
                 ("MFCC + SVM (jordipons)", "filtered test split", "53.4")]
FMA_ANCHORS = [("FMA system (published)", "fixed log-mel, 3 s segments, ensemble", "60.0"),
               ("FMA system (published)", "30 s clips", "12.5 (chance)")]


def _published(table: dict, key, columns: list[str]) -> dict:
    cells = table.get(key)
    return {c: cells[k] if cells else "-" for k, c in enumerate(columns)}


# ---------------------------------------------------------------------------------- the tables


@dataclass
class Table:
    """A table as a test expects it: ``header`` in order, ``rows`` (column -> cell) in any order, each
    named by the cells of ``key``, and the ``notes`` (source lines) under it (``None``: not known here)."""
    header: list[str]
    key: tuple[str, ...]
    rows: list[dict]
    notes: list[str] | None


def acc_column(split: str) -> str:
    return "test_accuracy" if split == "test" else "best_valid_acc"


def source_line(exp: Path, trials: list[Trial]) -> str:
    """The line under a table: where the trials are, how many finished (and were stopped early), the
    budget, the code's versions. Only for an experiment whose every trial ended: the folders cannot tell
    an errored trial from a paused one."""
    assert all(t.ended for t in trials), f"{exp}: a trial did not end"
    done = [t for t in trials if t.finished]
    stopped = len(trials) - len(done)
    counts = f"{len(done)} of {len(trials)} trials finished" + (
        f" ({stopped} stopped early by the scheduler)" if stopped else "")
    budget = []
    max_epochs = sorted({t.config["max_epochs"] for t in trials if t.config.get("max_epochs") is not None})
    if max_epochs:
        budget.append("max_epochs " + "/".join(f"{v:g}" for v in max_epochs))
    if done:
        epochs = [t.last["epoch"] + 1 for t in done]
        budget.append(f"epochs run {min(epochs)}" + (f"-{max(epochs)}" if min(epochs) != max(epochs) else ""))
    if any("seed" in t.config for t in trials):
        budget.append(f"{len({t.config['seed'] for t in trials if 'seed' in t.config})} samples (seeds) per configuration")
    samples = sorted({t.config["n_samples"] for t in trials if t.config.get("n_samples") is not None})
    if samples:
        budget.append("n_samples " + "/".join(f"{v:g}" for v in samples))
    versions = sorted({str(t.last["code_version"]) for t in done if t.last.get("code_version") is not None})
    return (f"Source: {os.path.abspath(exp)}; {counts}; budget: {', '.join(budget) or 'unknown'}; "
            f"code: {', '.join(versions) or 'not recorded'}.")


def expected_time_frequency(storage: Path, split: str, trials: list[Trial] | None = None) -> Table:
    """Table 4: per (model, lambda_init); ``trials`` replaces the experiment's own (a test's edited copy:
    then the line under the table is not known here)."""
    exp = storage / "time_frequency"
    edited = trials is not None
    trials = trials if edited else read_trials(exp)
    rows = []
    for (model, init), part in group(trials, lambda t: (t.setting("model_name"), t.setting("init_lambd"))).items():
        c = dmel_cells(part, acc_column(split), uar_column(split), "best_lambd_est", ".1f")
        rows.append({"model": model, "λ_init": f"{init:.1f}", "learned λ (min, max)": c["learned"],
                     "trainable acc %": c["trainable"], "fixed acc %": c["fixed"], DIFF: c[DIFF], TEST: c[TEST],
                     "trainable UAR %": c["trainable_uar"], "fixed UAR %": c["fixed_uar"],
                     N_PAIRED: c[N_PAIRED], COST_PAIRED: c[COST_PAIRED], **c["stats"],
                     **_published(TABLE4 if model == "linear_net" else {}, round(init, 1),
                                  ["paper learned λ", "paper DSPEC %", "paper fixed %"])})
    return Table(list(rows[0]), ("model", "λ_init"), rows, None if edited else [source_line(exp, trials)])


def _paper_rows(trials: list[Trial], split: str, paper: dict, paper_model: str, over_folds: bool = False) -> list[dict]:
    """The rows of the ESC-50 and AudioMNIST tables (figures/dmel_paper.py): per (model, initial ms)."""
    rows = []
    for (model, init), part in group(trials, lambda t: (t.setting("model_name"), gaussian_ms(t))).items():
        c = dmel_cells(part, acc_column(split), uar_column(split), "best_lambd_ms", ".0f", over_folds)
        rows.append({"model": model, "init (ms)": f"{init:g}", "learned (ms, min-max)": c["learned"],
                     "DMEL acc %": c["trainable"], "fixed acc %": c["fixed"], DIFF: c[DIFF], TEST: c[TEST],
                     "DMEL UAR %": c["trainable_uar"], "fixed UAR %": c["fixed_uar"],
                     N_PAIRED: c[N_PAIRED], COST_PAIRED: c[COST_PAIRED], **c["stats"],
                     **_published(paper if model == paper_model else {}, int(round(init)),
                                  ["paper learned (ms)", "paper DMEL %", "paper fixed %"])})
    return rows


def expected_esc50(storage: Path, split: str) -> Table:
    trials = read_trials(storage / "esc50")
    rows = _paper_rows(trials, split, TABLE2, "cnn6")
    return Table(list(rows[0]), ("model", "init (ms)"), rows, [source_line(storage / "esc50", trials)])


def expected_esc50_folds(storage: Path, split: str) -> Table:
    """Accuracy: mean ± std over the folds of each fold's mean; paired statistics over the folds."""
    trials = read_trials(storage / "esc50_folds")
    rows = _paper_rows(trials, split, TABLE2, "cnn6", over_folds=True)
    return Table(list(rows[0]), ("model", "init (ms)"), rows, [source_line(storage / "esc50_folds", trials)])


def expected_audiomnist60(storage: Path, split: str) -> Table:
    trials = read_trials(storage / "audiomnist60")
    rows = _paper_rows(trials, split, TABLE3, "mel_linear_net")
    return Table(list(rows[0]), ("model", "init (ms)"), rows, [source_line(storage / "audiomnist60", trials)])


def expected_audio_mnist(storage: Path, split: str) -> Table:
    """The FSDD table: per (model, initial ms), with the fixed torchaudio reference's accuracy of the same
    model (experiment ``audio_mnist_reference``; "not run" without it)."""
    acc, uar = acc_column(split), uar_column(split)
    trials = read_trials(storage / "audio_mnist")
    ref_exp = storage / "audio_mnist_reference"
    ref = read_trials(ref_exp) if ref_exp.is_dir() else None
    rows = []
    for (model, init), part in group(trials, lambda t: (t.setting("model_name"), gaussian_ms(t))).items():
        c = dmel_cells(part, acc, uar, "best_lambd_ms", ".0f")
        reference = {key: "not run" if ref is None else mean_std(
            t.last.get(key) for t in ref if t.finished and t.setting("model_name") == model) for key in (acc, uar)}
        rows.append({"model": model, "init (ms)": f"{init:g}", "learned (ms, min-max)": c["learned"],
                     "DMEL acc %": c["trainable"], "fixed acc %": c["fixed"], DIFF: c[DIFF], TEST: c[TEST],
                     "torchaudio 25 ms %": reference[acc], "DMEL UAR %": c["trainable_uar"],
                     "fixed UAR %": c["fixed_uar"], "torchaudio 25 ms UAR %": reference[uar],
                     N_PAIRED: c[N_PAIRED], COST_PAIRED: c[COST_PAIRED], **c["stats"],
                     **_published(TABLE3 if model == "mel_linear_net" else {}, int(round(init)),
                                  ["AudioMNIST paper learned", "AudioMNIST paper DMEL %", "AudioMNIST paper fixed %"])})
    notes = [source_line(storage / "audio_mnist", trials)] + ([f"Reference: {source_line(ref_exp, ref)}"] if ref else [])
    return Table(list(rows[0]), ("model", "init (ms)"), rows, notes)


def _music_table(exp: Path, panel_key: str, panel_name: str, metrics: dict[str, str], anchors: list,
                 split: str) -> Table:
    """GTZAN and FMA: per (front-end, initial ms, panel value), each metric (key -> column) over the
    finished trials, "not recorded" for a metric no trial reports, the UAR of ``split`` after the first one
    (``-`` where no trial reports it), cost, n and the model statistics; the published anchors below."""
    trials = read_trials(exp)
    rows = []
    configurations = group(trials, lambda t: (frontend_label(t), window_ms(t), t.setting(panel_key)))
    for (label, init, panel), part in configurations.items():
        done = [t for t in part if t.finished]
        learned = span((t.last.get("best_lambd_ms") for t in done), ".0f") if label == "DMEL trainable" else "-"
        cells = [(column, mean_std(t.last.get(key) for t in done) if any(key in t.last for t in trials)
                  else "not recorded") for key, column in metrics.items()]
        cells.insert(1, (f"{split} UAR %", mean_std(t.last.get(uar_column(split)) for t in done)))
        rows.append({"front-end": label, "init (ms)": f"{init:g}", panel_name: f"{panel:g}",
                     "learned (ms, min-max)": learned, **dict(cells), COST: cost(part),
                     "n finished/total": count(part), **model_stats(part)})
    header = list(rows[0])
    rows += [{c: "" for c in header} | {"front-end": system, "init (ms)": setting, header[4]: value}
             for system, setting, value in anchors]
    return Table(header, ("front-end", "init (ms)", panel_name), rows, [source_line(exp, trials)])


def expected_gtzan(storage: Path, split: str) -> Table:
    acc, vote = ("test_accuracy", "test_accuracy_vote") if split == "test" else ("best_valid_acc", "best_valid_acc_vote")
    return _music_table(storage / "gtzan", "split_parts", "split_parts",
                        {acc: f"{split} acc % (mean logits)", vote: f"{split} acc % (vote)"}, GTZAN_ANCHORS, split)


def expected_fma(storage: Path, split: str) -> Table:
    metrics = ({"test_accuracy": "test acc % (track)", "test_macro_f1": "macro-F1 %",
                "test_accuracy_segment": "test acc % (segment)"} if split == "test" else
               {"best_valid_acc": "valid acc % (track)", "best_valid_acc_segment": "valid acc % (segment)"})
    return _music_table(storage / "fma", "segment_seconds", "segment (s)", metrics, FMA_ANCHORS, split)


def expected_frontends(storage: Path, split: str) -> Table:
    """Per front-end: accuracy, the mean over its finished trials of each ``frontend_*`` drift metric
    (3 significant digits; among those some trial of the experiment reports), cost, n."""
    exp = storage / "frontends"
    trials = read_trials(exp)
    drift = sorted({k for t in trials for k, v in t.last.items() if k.startswith("frontend_") and is_number(v)})
    rows = []
    for label, part in group(trials, frontend_label).items():
        done = [t for t in part if t.finished]
        cells = [f"{k.removeprefix('frontend_')} {np.mean(v):.3g}" for k in drift
                 if (v := [t.last[k] for t in done if is_number(t.last.get(k))])]
        rows.append({"front-end": label, "accuracy (%)": mean_std(t.last.get(acc_column(split)) for t in done),
                     "UAR (%)": mean_std(t.last.get(uar_column(split)) for t in done),
                     "drift from initialisation (end of training)": ", ".join(cells) or "-", COST: cost(part),
                     "n": count(part), **model_stats(part)})
    return Table(list(rows[0]), ("front-end",), rows, [source_line(exp, trials)])


def expected_window_search(storage: Path, split: str) -> Table:
    """The search's row: the window of the tested trial with the lowest ``best_valid_loss``, its accuracy and
    UAR, the time and epochs of every trial that ended, the chosen trial's model statistics; one row per
    trainable run (one finished run per initial window) with its own."""
    acc, uar = acc_column(split), uar_column(split)
    search_exp, trainable_exp = storage / "window_search/search", storage / "window_search/trainable"
    search, trainable = read_trials(search_exp), read_trials(trainable_exp)
    ended = [t for t in search if t.ended]
    tested = [t for t in ended if t.finished]
    losses = sorted(t.last["best_valid_loss"] for t in tested)
    assert len(losses) < 2 or losses[0] < losses[1], "two searched trials share the lowest loss: the choice is by order"
    chosen = min(tested, key=lambda t: t.last["best_valid_loss"]) if tested else None
    rows = [{"run": "fixed window, search",
             "window (ms)": f"{chosen.config['init_window_ms']:.1f} (best found)" if chosen else "-",
             "accuracy %": f"{100 * chosen.last[acc]:.1f}" if chosen else "-",
             "UAR %": f"{100 * chosen.last[uar]:.1f}" if chosen else "-",
             "compute (trial-s)": f"{sum(t.last['time_total_s'] for t in ended):.1f}",
             "epochs": f"{sum(t.last['epoch'] + 1 for t in ended):.0f}",
             "trials": f"{count(search)} tested, {len(ended) - len(tested)} stopped early", COST: cost(search),
             **model_stats([chosen] if chosen else [])}]
    for init, part in group(trainable, lambda t: t.config["init_window_ms"]).items():
        done = [t for t in part if t.finished]
        assert len(done) <= 1, "more than one finished run from one initial window: the table shows the first"
        run = done[0].last if done else None
        rows.append({"run": f"trainable from {init:g} ms",
                     "window (ms)": f"{init:g} → {run['best_lambd_ms']:.1f} (learned)" if run else "-",
                     "accuracy %": f"{100 * run[acc]:.1f}" if run else "-",
                     "UAR %": f"{100 * run[uar]:.1f}" if run else "-",
                     "compute (trial-s)": f"{run['time_total_s']:.1f}" if run else "-",
                     "epochs": f"{run['epoch'] + 1:.0f}" if run else "-", "trials": count(part), COST: cost(part),
                     **model_stats(done)})
    return Table(list(rows[0]), ("run",), rows,
                 [source_line(search_exp, search), f"Trainable runs: {source_line(trainable_exp, trainable)}"])


EXPECTED = {"time_frequency": expected_time_frequency, "gtzan": expected_gtzan, "fma": expected_fma,
            "esc50": expected_esc50, "esc50_folds": expected_esc50_folds, "audiomnist60": expected_audiomnist60,
            "audio_mnist": expected_audio_mnist, "frontends": expected_frontends, "window_search": expected_window_search}


# -------------------------------------------------------------------------- reading a table file


def read_markdown_table(text: str) -> tuple[list[str], list[list[str]], list[str]]:
    """``(header, rows, notes)`` of a Markdown text holding one pipe table: its cells stripped, and the
    non-empty lines after the table."""
    lines = text.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("|")]
    assert at and at == list(range(at[0], at[-1] + 1)), "no single pipe table"

    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    return cells(lines[at[0]]), [cells(line) for line in lines[at[0] + 2:at[-1] + 1]], \
        [line.strip() for line in lines[at[-1] + 1:] if line.strip()]


def markdown_rows(text: str) -> list[dict]:
    """The rows of the pipe table in ``text`` as dicts (column -> cell)."""
    header, rows, _ = read_markdown_table(text)
    return [dict(zip(header, r)) for r in rows]


def assert_table(path: Path, expected: Table) -> None:
    """The table in ``path`` has ``expected``'s header, exactly its rows (matched by key, every cell equal)
    and its lines below (where known)."""
    header, rows, below = read_markdown_table(Path(path).read_text())
    assert header == expected.header, (path.name, header, expected.header)
    got = {tuple(r[header.index(k)] for k in expected.key): dict(zip(header, r)) for r in rows}
    want = {tuple(r[k] for k in expected.key): r for r in expected.rows}
    assert len(got) == len(rows) and len(want) == len(expected.rows), f"{path.name}: two rows share a key"
    assert set(got) == set(want), (path.name, sorted(got), sorted(want))
    wrong = {(k, c): (got[k][c], want[k][c]) for k in want for c in header if got[k][c] != want[k][c]}
    assert not wrong, f"{path.name}: (row, column): (table, recomputed) {wrong}"
    if expected.notes is not None:
        assert below == expected.notes, (path.name, below, expected.notes)


def assert_tables(storage: Path, table_dir: Path, name: str, split: str = "test") -> Table:
    """Compare ``<table_dir>/<split>_<name>.md`` with experiment ``name`` of ``storage`` recomputed here;
    returns the recomputed table."""
    expected = EXPECTED[name](Path(storage), split)
    assert_table(Path(table_dir) / f"{split}_{name}.md", expected)
    return expected
