"""--search (random, optuna) and --scheduler (asha) through main.py, the grid/searcher conflict, and the
window_search experiment end to end on the FSDD fixture (search and trainable parts, figure and table)."""
from pathlib import Path

import pandas as pd
import pytest
from ray import tune

from figures.provenance import missing_trials, source_line
from figures.read import load_experiment
from tests.fixtures import make_fsdd
from tests.independent import assert_tables, read_trials
from tests.inprocess import main_py, produce_figures
from tuning.spaces import ConfigError, Search, build_parts, expand_grid, parse_overrides

TINY = ["--name=time_frequency", "--num_cpus=2", "--max_epochs=1", "--set", "n_samples=150",
        "--set", 'model_name="linear_net"', "--set", "trainable=False"]


def trial_configs(exp: Path) -> list[dict]:
    """Each trial's config as Tune stored it (params.json), in folder order."""
    return [t.config for t in read_trials(exp)]


# ------------------------------------------------------------------------------------------- no Ray


def test_distributions_from_the_command_line():
    got = parse_overrides(["init_lambd=loguniform(1.0, 32.0)", "batch_size=choice([16, 32])", "note=uniform",
                           "stft_window=hann+hamming"])
    assert isinstance(got["init_lambd"], tune.search.sample.Float)
    assert (got["init_lambd"].lower, got["init_lambd"].upper) == (1.0, 32.0)
    assert got["batch_size"].categories == [16, 32]
    assert got["note"] == "uniform" and got["stft_window"] == "hann+hamming"  # plain strings stay strings
    with pytest.raises(ConfigError, match="cannot read the distribution 'uniform\\(1\\)'"):
        parse_overrides(["lr_model=uniform(1)"])


def test_grid_axes_with_a_searcher_are_a_clear_error():
    with pytest.raises(ConfigError, match=r"cannot explore grid axes \(trainable\) of "
                                          r"'time_frequency'.*--set KEY=VALUE.*--search=grid"):
        build_parts("time_frequency", 1, 3, {"init_lambd": tune.loguniform(1.0, 32.0)}, search="optuna")
    with pytest.raises(ConfigError, match=r"declares distributions \(init_lambd\).*--search=random or --search=optuna"):
        build_parts("time_frequency", 1, 3, {"init_lambd": tune.loguniform(1.0, 32.0)})
    with pytest.raises(ConfigError, match="declares no distribution"):
        build_parts("time_frequency", 1, 3, {"model_name": "linear_net", "trainable": False, "init_lambd": 6.38},
                    search="random")


def test_window_search_parts():
    search, trainable = build_parts("window_search", 7, 5, {})
    assert (search.name, trainable.name) == ("window_search/search", "window_search/trainable")
    assert search.search == Search("optuna", "asha", 5, 0) and trainable.search == Search("grid", "fifo", 1, 0)
    assert search.space["seed"] == 0 and search.space["trainable"] is False
    window = search.space["init_window_ms"]
    assert (window.lower, window.upper) == (5.0, 500.0) and type(window.get_sampler()).__name__ == "_LogUniform"
    # the edges of the distribution are checked and prepared; the trainable part is one run per window
    assert sorted(c["init_window_ms"] for c in expand_grid(search.space)) == [5.0, 500.0]
    assert [(c["init_window_ms"], c["trainable"], c["seed"]) for c in expand_grid(trainable.space)] == \
        [(10.0, True, 0), (35.0, True, 0), (300.0, True, 0)]
    assert {c["model_name"] for c in expand_grid(trainable.space)} == {"mel_linear_net"}
    # --search/--scheduler replace the searching part's settings only
    random_search, grid = build_parts("window_search", 7, 5, {}, search="random", scheduler="fifo", search_seed=3)
    assert random_search.search == Search("random", "fifo", 5, 3) and grid.search == Search("grid", "fifo", 1, 3)


def test_main_reports_the_conflict(root, tmp_path):
    out = main_py(root, "--name=time_frequency", "--search=optuna", f"--ray_root_dir={tmp_path}")
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "cannot explore grid axes (init_lambd, trainable)" in out.stderr
    assert not (tmp_path / "time_frequency").exists()


# --------------------------------------------------------------------------------------- with Ray


@pytest.mark.parametrize("search", ["random", "optuna"])
def test_search_draws_num_samples_trials_the_same_twice(root, tmp_path, search):
    """3 trials with 3 different log-uniform lambdas, every trial seeded 0; the same command (same searcher
    seed) in another folder draws the same lambdas."""
    args = [*TINY, f"--search={search}", "--num_samples=3", "--set", "init_lambd=loguniform(1.0, 32.0)"]
    drawn = []
    for run in ("a", "b"):
        out = main_py(root, *args, f"--ray_root_dir={tmp_path}/{run}")
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "3 trials finished, 0 unfinished, 0 errored" in out.stdout
        configs = trial_configs(tmp_path / run / "time_frequency")
        assert len(configs) == 3 and {c["seed"] for c in configs} == {0}
        lambdas = sorted(c["init_lambd"] for c in configs)
        assert len(set(lambdas)) == 3 and all(1.0 <= v <= 32.0 for v in lambdas), lambdas
        drawn.append(lambdas)
    assert drawn[0] == drawn[1]


def test_asha_stops_the_trial_that_trails(root, tmp_path):
    """A tiny grid run one trial at a time: lr 0.0003 learns, lr 0 cannot (its validation loss stays at
    its first value, 0.74, against 0.59 after one epoch): ASHA stops it at the first rung (epoch 1 of 3)."""
    args = ["--name=time_frequency", "--num_cpus=2", "--max_epochs=3", "--scheduler=asha", "--max_concurrent=1",
            "--set", "n_samples=300", "--set", 'model_name="linear_net"', "--set", "trainable=False",
            "--set", "init_lambd=6.38", "--set", 'optimizer_name="adam"', "--set", "lr_model=[0.0003,0.0]",
            f"--ray_root_dir={tmp_path}"]
    out = main_py(root, *args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 trials finished, 0 unfinished, 0 errored, 1 stopped early by the scheduler" in out.stdout
    exp = tmp_path / "time_frequency"
    epochs = {c["lr_model"]: len(pd.read_csv(d / "progress.csv"))
              for c, d in zip(trial_configs(exp), sorted(exp.glob("train_trial_*")))}
    assert epochs == {0.0003: 3, 0.0: 1}
    df, _ = load_experiment(exp, keep_unfinished=True)
    stopped = df[df["stopped_early"]]
    assert list(stopped["config/lr_model"]) == [0.0] and not stopped["done"].any()
    assert missing_trials(df) == []  # stopped, not waiting for a rerun
    assert "1 of 2 trials finished (1 stopped early by the scheduler)" in source_line(df)


def test_window_search_end_to_end(root, tmp_path):
    """One command runs both parts (3 searched fixed windows with Optuna + ASHA, 3 trainable runs); a rerun
    resumes both without a note; produce_figures.py draws the figure and writes the table, every cell of
    which tests/independent.py recomputes from the trial folders."""
    data = make_fsdd(tmp_path / "fsdd", takes=4)
    args = ["--name=window_search", "--num_cpus=2", "--num_samples=3", "--max_epochs=2", f"--data_dir={data}",
            f"--ray_root_dir={tmp_path}/rr"]
    out = main_py(root, *args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "optuna search of 3 trials (searcher seed 0), asha scheduler" in out.stdout
    search_exp, trainable_exp = tmp_path / "rr/window_search/search", tmp_path / "rr/window_search/trainable"
    searched = trial_configs(search_exp)
    assert len(searched) == 3 and all(not c["trainable"] and 5.0 <= c["init_window_ms"] <= 500.0 for c in searched)
    assert len({c["init_window_ms"] for c in searched}) == 3
    trainable = trial_configs(trainable_exp)
    assert sorted(c["init_window_ms"] for c in trainable) == [10.0, 35.0, 300.0] and all(c["trainable"] for c in trainable)
    assert {c["model_name"] for c in searched + trainable} == {"mel_linear_net"}

    again = main_py(root, *args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resuming the experiment in {search_exp}" in again.stdout
    assert f"resuming the experiment in {trainable_exp}" in again.stdout
    assert "different search space" not in again.stdout
    assert len(trial_configs(search_exp)) == 3 and len(trial_configs(trainable_exp)) == 3

    figs = produce_figures(root, f"--ray_root_dir={tmp_path}/rr", f"--results_dir={tmp_path}/results")
    assert figs.returncode == 0, figs.stdout[-3000:] + figs.stderr[-3000:]
    for ext in ("pdf", "png"):
        assert (tmp_path / f"results/figures/test_window_search.{ext}").stat().st_size > 0
    table = assert_tables(tmp_path / "rr", tmp_path / "results/tables", "window_search")  # every cell, from the trials
    assert {r["run"] for r in table.rows} == {"fixed window, search", "trainable from 10 ms", "trainable from 35 ms",
                                             "trainable from 300 ms"}
