"""The front-end bench end to end: ``--name=frontends`` trains every front-end of the registry on an FSDD
fixture through Tune, then ``produce_figures.py`` writes its table and figures; the independent reader
(tests/independent.py: plain json over the trial folders) checks every cell and which front-ends learned."""
import math

import pytest

import search_spaces
from models.registry import FRONTENDS
from tests.fixtures import make_fsdd
from tests.independent import assert_tables, frontend_label, read_trials
from tests.inprocess import main_py, produce_figures

LEARNS_NOTHING = {"fixed mel", "DMEL fixed"}  # no learnable front-end parameter: no drift metric moves


@pytest.fixture(scope="module")
def bench(root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    data = make_fsdd(tmp / "fsdd", takes=6)
    run = main_py(root, "--name=frontends", "--num_cpus=2", "--max_epochs=1", f"--data_dir={data}",
                  f"--ray_root_dir={tmp}/rr", "--set", 'model_name="mel_linear_net"')
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figs = produce_figures(root, "--split=test", f"--ray_root_dir={tmp}/rr", f"--results_dir={tmp}/results")
    assert figs.returncode == 0, figs.stdout[-3000:] + figs.stderr[-3000:]
    return tmp, run.stdout


def test_the_grid_covers_every_registered_frontend():
    variants = search_spaces.frontends(1)["variant"]["grid_search"]
    assert {v["frontend"] for v in variants} == set(FRONTENDS)


def test_every_frontend_trains_and_the_table_says_so(bench):
    tmp, stdout = bench
    n = len(search_spaces.frontends(1)["variant"]["grid_search"])
    assert f"{n} trials finished, 0 unfinished, 0 errored" in stdout
    table = assert_tables(tmp / "rr", tmp / "results/tables", "frontends")  # every cell, from the trial folders
    rows = {r["front-end"]: r for r in table.rows}
    assert len(rows) == n, sorted(rows)
    found = read_trials(tmp / "rr/frontends")
    assert len(found) == n
    for trial in found:
        last, label = trial.last, frontend_label(trial)
        assert math.isfinite(last["loss"]) and 0 <= last["test_accuracy"] <= 1, trial.config
        drift = {k: v for k, v in last.items() if k.startswith("frontend_") and v is not None and math.isfinite(v)}
        assert rows[label]["n"] == "1/1"  # one sample per front-end
        if label in LEARNS_NOTHING:
            assert not any(drift.values()), (label, drift)
            assert rows[label]["drift from initialisation (end of training)"] == "-"
        else:  # after one epoch every learnable front-end has left its initialisation, and the table shows it
            assert drift and any(v > 0 for v in drift.values()), (label, last)
    for stem in ("test_frontends", "drift_frontends"):
        assert (tmp / f"results/figures/{stem}.png").stat().st_size > 0


def test_other_grids_take_any_frontend_through_set():
    """docs/configuration.md's commands: ESC-50 with one front-end; GTZAN's variant axis replaced by a list of them."""
    from tuning.spaces import build_space, parse_overrides

    esc = build_space("esc50", 1, 1, parse_overrides(["frontend=leaf", "trainable=True", "init_window_ms=25.0"]))
    assert (esc["frontend"], esc["trainable"], esc["init_window_ms"]) == ("leaf", True, 25.0)
    gtzan = build_space("gtzan", 1, 1, parse_overrides(['variant=[{"frontend": "leaf"}, {"frontend": "sincnet"}]']))
    assert gtzan["variant"] == {"grid_search": [{"frontend": "leaf"}, {"frontend": "sincnet"}]}
