"""Where a table's numbers come from: the line under every table, and the trials left out of it."""
from __future__ import annotations

import pandas as pd

from figures.read import finished
from tuning import status


def missing_trials(df: pd.DataFrame) -> list[str]:
    """``"<trial folder> (<status>)"`` for each trial of the experiment that did not finish (a trial the
    scheduler stopped early is not missing: it ended)."""
    trials = df.attrs.get("trials")
    if trials is None or trials.empty:
        return []
    return [f"{t.trial_dir} ({t.status})" for t in trials[~status.ended(trials)].itertuples()]


def source_line(df: pd.DataFrame) -> str:
    """Where a table's numbers come from: the experiment, its trials, the budget and the code's commit.

    ``df``: an experiment as :func:`figures.read.load_experiment` returns it (``keep_unfinished`` or not)."""
    trials = df.attrs.get("trials")
    total = len(trials) if trials is not None else len(df)
    done = finished(df)
    counts = f"{len(done)} of {total} trials finished"
    if trials is not None and len(trials):
        errored = int((trials["status"] == "ERROR").sum())
        stopped = int(status.stopped_early(trials).sum())
        notes = [f"{errored} errored"] * bool(errored) + [f"{stopped} stopped early by the scheduler"] * bool(stopped)
        counts += f" ({', '.join(notes)})" if notes else ""
    budget = []
    if "config/max_epochs" in df and df["config/max_epochs"].notna().any():
        budget.append("max_epochs " + "/".join(f"{v:g}" for v in sorted(df["config/max_epochs"].dropna().unique())))
    if "epoch" in done and len(done):
        epochs = (done["epoch"] + 1).astype(int)
        budget.append(f"epochs run {epochs.min()}-{epochs.max()}" if epochs.min() != epochs.max()
                      else f"epochs run {epochs.min()}")
    if "config/seed" in df:
        budget.append(f"{df['config/seed'].nunique()} samples (seeds) per configuration")
    if "config/n_samples" in df and df["config/n_samples"].notna().any():
        budget.append("n_samples " + "/".join(f"{v:g}" for v in sorted(df["config/n_samples"].dropna().unique())))
    versions = sorted(done["code_version"].dropna().astype(str).unique()) if "code_version" in done else []
    code = ", ".join(versions) if versions else "not recorded"
    return (f"Source: {df.attrs.get('experiment', 'unknown experiment')}; {counts}; "
            f"budget: {', '.join(budget) or 'unknown'}; code: {code}.")
