"""Front-end labels from the registry (identical to the plain labels of tests/independent.py for every
config of every registered experiment; a front-end the registry does not know is labelled, never a
KeyError), and the generic table of an experiment without a figures module: a toy experiment registered
here, trained by main.py, drawn by produce_figures.py and checked cell by cell with plain json over its
trial folders."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from ray import tune

import produce_figures
from figures.generic import summary_table
from figures.labels import frontend_label, initial_window_ms, with_frontends
from tests import independent
from tests.inprocess import main_py
from training.config import DEFAULTS, is_variant
from tuning.experiments import EXPERIMENTS, list_experiments, register_experiment
from tuning.spaces import build_parts, expand_grid

TOY = "generic_toy"


def _rows_of_every_grid():
    """``(experiment, resolved config)`` for every trial config of every registered experiment (the edges
    of a distribution), the way ``main.py --name=<experiment>`` builds them."""
    for name in list_experiments():
        for part in build_parts(name, 2, 2):
            for config in expand_grid(part.space):
                yield name, config


def test_labels_and_windows_equal_the_plain_ones_for_every_grid():
    """Each config as a full row and as a row of only the keys that differ from their default (what an
    experiment that never set the others has): the same label and window as tests/independent.py."""
    seen = set()
    for name, config in _rows_of_every_grid():
        trial = independent.Trial(name, {k: v for k, v in config.items() if not is_variant(k)}, [], config)
        want = (independent.frontend_label(trial), independent.window_ms(trial))
        full = pd.Series({f"config/{k}": v for k, v in config.items()}, dtype=object)
        set_only = pd.Series({f"config/{k}": v for k, v in config.items()
                              if k not in DEFAULTS or not _same(v, DEFAULTS[k])}, dtype=object)
        for row in (full, set_only):
            assert (frontend_label(row), initial_window_ms(row)) == want, (name, dict(row))
        seen.add(want[0])
    assert {"DMEL trainable", "DMEL fixed", "fixed mel", "LEAF", "EfficientLEAF", "SincNet", "DSTFT",
            "trainable mel"} <= seen and any(label.startswith("Ada-STFT") for label in seen), seen


def _same(a, b) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def test_an_unregistered_frontend_is_labelled_by_its_name(capsys):
    df = pd.DataFrame([{"config/frontend": "gone_frontend", "config/compression": "pcen", "done": True,
                        "test_accuracy": 0.5},
                       {"config/frontend": "gaussian", "config/trainable": False, "config/init_lambd": 8.0,
                        "done": True, "test_accuracy": 0.7}])
    out = with_frontends(df)
    assert list(out["frontend"]) == ["gone_frontend + PCEN", "DMEL fixed"]
    assert math.isnan(out["init_ms"].iloc[0]) and out["init_ms"].iloc[1] == 6.0  # 6 x 8 samples at 8 kHz
    assert "'gone_frontend' is not registered" in capsys.readouterr().out
    table = summary_table(out, "test_accuracy", "test acc %")
    assert table.to_dict("records") == [
        {"front-end": "DMEL fixed", "compression": "-", "init_lambd": "8", "trainable": "False", "test acc %": "70.0",
         "n finished/total": "1/1", "cost: s/trial, epochs (mean)": "not recorded"},
        {"front-end": "gone_frontend + PCEN", "compression": "pcen", "init_lambd": "-", "trainable": "-",
         "test acc %": "50.0", "n finished/total": "1/1", "cost: s/trial, epochs (mean)": "not recorded"}]


# ------------------------------------------------------------------------------- end to end


def generic_toy(max_epochs):
    """Toy for figures/generic.py: DSPEC trainable, and fixed with PCEN, at two initial windows."""
    return {"dataset_name": "time_frequency", "model_name": "linear_net", "n_samples": 150, "max_epochs": max_epochs,
            "variant": tune.grid_search([{"trainable": True}, {"trainable": False, "compression": "pcen"}]),
            "init_lambd": tune.grid_search([1.276, 31.9])}


@pytest.fixture(scope="module")
def toy(root, tmp_path_factory):
    """The toy experiment registered without a figures module (removed from the registry afterwards), run
    by main.py with 2 seeds of 2 epochs (8 trials); yields the storage folder."""
    register_experiment(gpu_share=1 / 8)(generic_toy)
    try:
        storage = tmp_path_factory.mktemp("generic") / "rr"
        run = main_py(root, f"--name={TOY}", "--num_cpus=2", "--num_samples=2", "--max_epochs=2",
                      f"--ray_root_dir={storage}")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        yield storage
    finally:
        EXPERIMENTS._records.pop(TOY, None)  # the registry has no removal: the test's own record only


def expected_toy(storage, split: str) -> tuple[list[str], list[dict], list[str]]:
    """The toy's table from its trial folders (plain json, tests/independent.py): one row per (front-end,
    compression, init_lambd, trainable); the columns that vary, "-" where a trial's config does not set it."""
    exp = storage / TOY
    trials = independent.read_trials(exp)
    acc = independent.acc_column(split)
    rows = []

    def shown(t, key):
        value = t.config.get(key)
        return "-" if value is None else str(value) if isinstance(value, (bool, str)) else f"{value:g}"

    for (label, *axes), part in independent.group(
            trials, lambda t: (independent.frontend_label(t), *(shown(t, k) for k in ("compression", "init_lambd",
                                                                                        "trainable")))).items():
        done = [t for t in part if t.finished]
        rows.append({"front-end": label, "compression": axes[0], "init_lambd": axes[1], "trainable": axes[2],
                     f"{split} acc %": independent.mean_std(t.last.get(acc) for t in done),
                     f"{split} UAR %": independent.mean_std(t.last.get(independent.uar_column(split)) for t in done),
                     "n finished/total": independent.count(part),
                     "cost: s/trial, epochs (mean)": independent.cost(part), **independent.model_stats(part)})
    return list(rows[0]), rows, [independent.source_line(exp, trials)]


@pytest.mark.parametrize("split", ["test", "valid"])
def test_generic_table_equals_plain_json(toy, tmp_path, split):
    assert json.loads((toy / TOY / "harness_space.json").read_text())  # started as a plain grid
    code = produce_figures.main([f"--split={split}", f"--ray_root_dir={toy}", f"--results_dir={tmp_path}"])
    assert code == 0
    header, rows, notes = expected_toy(toy, split)
    assert len(rows) == 4 and {r["n finished/total"] for r in rows} == {"2/2"}
    labels = {r["front-end"] for r in rows}
    assert labels == {"DMEL trainable", "DMEL fixed + PCEN"}, labels
    independent.assert_table(tmp_path / f"tables/{split}_{TOY}.md",
                             independent.Table(header, ("front-end", "init_lambd"), rows, notes))
    structured = json.loads((tmp_path / f"tables/{split}_{TOY}.json").read_text())
    got, md_rows, _ = independent.read_markdown_table((tmp_path / f"tables/{split}_{TOY}.md").read_text())
    assert structured["columns"] == got and structured["rows"] == md_rows and structured["sources"] == notes
    assert f"tables/{split}_{TOY}.md" in (tmp_path / "index.html").read_text()
    assert np.isfinite([float(r[f"{split} acc %"].split(" ± ")[0]) for r in rows]).all()
    assert np.isfinite([float(r[f"{split} UAR %"].split(" ± ")[0]) for r in rows]).all()
    # every trial recorded its statistics: the trainable window's one lambda (PCEN's own parameters beside the
    # fixed one), FLOPs and a latency
    assert {r["learnable front-end params"] for r in rows if r["front-end"] == "DMEL trainable"} == {"1"}, rows
    assert all(float(r["CPU ms/input"]) > 0 and " + " in r["MFLOP/input (front-end + head)"] for r in rows)
