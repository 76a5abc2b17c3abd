"""The front-end bench end to end: ``--name=frontends`` trains every front-end of the registry on an FSDD
fixture through Tune, then ``produce_figures.py`` writes its table and figures; an independent reader
(plain json over each trial's ``result.json``) checks every accuracy cell and which front-ends learned."""
import json
import math

import pytest

import search_spaces
from models.classifiers import FRONTENDS
from tests.fixtures import make_fsdd
from tests.inprocess import main_py, produce_figures
from tests.test_tables import markdown_rows

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


def trials(exp):
    out = []
    for d in sorted(exp.glob("train_trial_*")):
        last = json.loads((d / "result.json").read_text().strip().splitlines()[-1])
        out.append({"config": json.loads((d / "params.json").read_text()), "last": last})
    return out


def test_the_grid_covers_every_registered_frontend():
    variants = search_spaces.frontends(1)["variant"]["grid_search"]
    assert {v["frontend"] for v in variants} == set(FRONTENDS)


def test_every_frontend_trains_and_the_table_says_so(bench):
    tmp, stdout = bench
    n = len(search_spaces.frontends(1)["variant"]["grid_search"])
    assert f"{n} trials finished, 0 unfinished, 0 errored" in stdout
    rows = {r["front-end"]: r for r in markdown_rows((tmp / "results/tables/test_frontends.md").read_text())}
    assert len(rows) == n, sorted(rows)
    found = trials(tmp / "rr/frontends")
    assert len(found) == n
    for trial in found:
        last, variant = trial["last"], trial["config"]["variant"]
        assert math.isfinite(last["loss"]) and 0 <= last["test_accuracy"] <= 1, variant
        drift = {k: v for k, v in last.items() if k.startswith("frontend_") and v is not None and math.isfinite(v)}
        [label] = [lbl for lbl, r in rows.items() if _matches(lbl, variant)]
        # the independent reader: one sample per front-end, so the cell is that trial's accuracy
        assert rows[label]["accuracy (%)"] == f"{100 * last['test_accuracy']:.1f}", (label, rows[label])
        assert rows[label]["n"] == "1/1"
        assert rows[label]["cost: s/trial, epochs (mean)"] == f"{last['time_total_s']:.1f} s, {last['epoch'] + 1:.1f} ep"
        if label in LEARNS_NOTHING:
            assert not any(drift.values()), (label, drift)
            assert rows[label]["drift from initialisation (end of training)"] == "-"
        else:  # after one epoch every learnable front-end has left its initialisation, and the table shows it
            assert drift and any(v > 0 for v in drift.values()), (label, last)
            cell = rows[label]["drift from initialisation (end of training)"]
            for name, value in drift.items():
                assert f"{name.removeprefix('frontend_')} {value:.3g}" in cell, (label, cell, drift)
    for stem in ("test_frontends", "drift_frontends"):
        assert (tmp / f"results/figures/{stem}.png").stat().st_size > 0


LABELS = {"torchaudio_mel": "fixed mel", "adastft": "Ada-STFT window", "trainable_mel": "trainable mel", "leaf": "LEAF",
          "efficientleaf": "EfficientLEAF", "sincnet": "SincNet", "dstft": "DSTFT"}


def _matches(label: str, variant: dict) -> bool:
    """Whether the table's ``label`` names the front-end ``variant`` sets (an independent mapping)."""
    kind = variant["frontend"]
    expected = ("DMEL trainable" if variant["trainable"] else "DMEL fixed") if kind == "gaussian" else LABELS[kind]
    own = {"log_tbn": " (log+TBN)"}.get(variant.get("leaf_compression"), "")  # EfficientLEAF's own compression
    return label == expected + own + (" + PCEN" if variant.get("compression") == "pcen" else "")


def test_other_grids_take_any_frontend_through_set():
    """The README's commands: ESC-50 with one front-end; GTZAN's variant axis replaced by a list of them."""
    from tuning.runner import build_space, parse_overrides

    esc = build_space("esc50", 1, 1, parse_overrides(["frontend=leaf", "trainable=True", "init_window_ms=25.0"]))
    assert (esc["frontend"], esc["trainable"], esc["init_window_ms"]) == ("leaf", True, 25.0)
    gtzan = build_space("gtzan", 1, 1, parse_overrides(['variant=[{"frontend": "leaf"}, {"frontend": "sincnet"}]']))
    assert gtzan["variant"] == {"grid_search": [{"frontend": "leaf"}, {"frontend": "sincnet"}]}
