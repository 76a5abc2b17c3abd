"""``main.py --list``: the registered experiments, front-ends and datasets, for people and for scripts.

``--list`` prints three tables; ``--list=<kind>`` prints one machine-readable line per record, tab-separated,
which ``run_experiments.sh`` and ``download_data.sh`` read instead of repeating the lists:

* ``experiments``: name, dataset, trials per sample (``-``: drawn by a search), GPU share, figures module;
* ``frontends``: name, features, initial-window key, description;
* ``datasets``: dataset_name, download name (``-``: none), default folder (``-``: none), description;
* ``runs``: what ``run_experiments.sh`` runs, in order: experiment, budget variable, full epochs, samples
  (``-``: ``NUM_SAMPLES``), dataset folder variable (``-``: generated data), default folder, download name.
"""
from __future__ import annotations

import models  # noqa: F401 - fills the front-end registry
from corpora.registry import CORPORA
from models.registry import FRONTENDS
from tuning.experiments import list_experiments, get_experiment

KINDS = ("experiments", "frontends", "datasets", "runs")


def rows(kind: str) -> list[tuple[str, ...]]:
    """One tuple of strings per record of ``kind`` (see the module docstring)."""
    if kind == "experiments":
        out = []
        for name in list_experiments():
            e = get_experiment(name)
            trials = e.trials_per_sample()
            out.append((name, e.dataset(), "-" if trials is None else str(trials), f"{e.gpu_share:.3g}",
                        e.figures or "figures.generic"))
        return out
    if kind == "frontends":
        return [(f.name, "/".join(f.features), f.window_key or "-", f.description) for f in FRONTENDS.values()]
    if kind == "datasets":
        return [(c.name, c.download or "-", c.default_dir or "-", c.description) for c in CORPORA.values()]
    if kind == "runs":
        out = []
        for name in list_experiments():
            e = get_experiment(name)
            corpus = CORPORA.get(e.dataset())
            folder = ((corpus.dir_env or "-", corpus.default_dir or "-", corpus.download or "-") if corpus.reads_disk
                      else ("-", "-", "-"))
            out.append((name, e.budget_env, str(e.full_epochs), str(e.full_samples or "-"), *folder))
        return out
    raise ValueError(f"--list={kind!r}: choose one of {', '.join(KINDS)}")


def tables() -> str:
    """The three human-readable tables ``main.py --list`` prints."""
    def table(title: str, header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *body]]
        return f"{title}\n" + "\n".join("  " + line for line in lines)

    datasets = [(c.name, c.description, f"sh download_data.sh {c.download}" if c.download else
                 ("generated" if not c.reads_disk else "--data_dir=<folder>"))
                for c in CORPORA.values()]
    return "\n\n".join([
        table("experiments (python main.py --name=<name>)",
              ("name", "dataset", "trials/sample", "GPU share", "figures"), rows("experiments")),
        table("front-ends (--set frontend=<name>)", ("name", "features", "window key", "description"),
              rows("frontends")),
        table("datasets (--set dataset_name=<name>)", ("name", "description", "install"), datasets),
    ])
