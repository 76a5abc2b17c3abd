"""The command line end to end with real Ray Tune runs: run, rerun (resume), interrupt, figures, errors."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

TINY = ["--name=time_frequency", "--num_cpus=2", "--set", "n_samples=150", "--set", 'model_name="linear_net"']


def main_py(root, *args, timeout=300):
    return subprocess.run([sys.executable, "main.py", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout)


def trial_dirs(exp):
    return sorted(p for p in Path(exp).iterdir() if p.is_dir() and p.name.startswith("train_trial"))


def test_run_rerun_and_figures(root, tmp_path):
    args = [*TINY, "--max_epochs=2", "--set", "init_lambd=[1.276,31.9]", f"--ray_root_dir={tmp_path}/rr",
            f"--data_dir={tmp_path}/absent"]
    first = main_py(root, *args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "4 trials finished, 0 unfinished, 0 errored" in first.stdout
    exp = tmp_path / "rr" / "time_frequency"
    dirs = trial_dirs(exp)
    assert len(dirs) == 4
    rows = {d.name: len(pd.read_csv(d / "progress.csv")) for d in dirs}
    assert set(rows.values()) == {2}

    again = main_py(root, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming the experiment" in again.stdout
    assert trial_dirs(exp) == dirs  # nothing started twice
    assert {d.name: len(pd.read_csv(d / "progress.csv")) for d in dirs} == rows

    figs = subprocess.run([sys.executable, "produce_figures.py", "--split=test", f"--ray_root_dir={tmp_path}/rr",
                           f"--results_dir={tmp_path}/results"], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert figs.returncode == 0, figs.stderr[-3000:]
    for name in ("figures/data_example.pdf", "figures/data_example.png", "figures/test_time_frequency.pdf",
                 "figures/test_time_frequency.png", "figures/lambda_curves_time_frequency.pdf",
                 "tables/test_time_frequency.md", "tables/test_time_frequency.tex"):
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    table = (tmp_path / "results/tables/test_time_frequency.md").read_text()
    assert "98.5 ± 0.2" in table and "| linear_net |" in table


def test_interrupt_then_resume(root, tmp_path):
    args = [*TINY, "--max_epochs=40", "--set", "init_lambd=6.38", "--set", "trainable=True",
            "--set", "checkpoint_every=1", f"--ray_root_dir={tmp_path}/rr"]
    proc = subprocess.Popen([sys.executable, "main.py", *args], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    exp = tmp_path / "rr" / "time_frequency"
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until the trial has reported a few epochs
        progress = list(exp.glob("train_trial*/progress.csv")) if exp.exists() else []
        if progress and len(pd.read_csv(progress[0])) >= 5:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out[-3000:]
    assert "rerun the same command to resume" in out

    resumed = main_py(root, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming the experiment" in resumed.stdout
    [trial] = trial_dirs(exp)
    progress = pd.read_csv(trial / "progress.csv")
    final = progress.iloc[-1]
    assert final["done"] and final["epoch"] == 39 and not pd.isna(final["test_accuracy"])
    assert sorted(set(progress["epoch"])) == list(range(40))  # every epoch trained


def test_clear_errors(root, tmp_path):
    bad_name = main_py(root, "--name=nope", f"--ray_root_dir={tmp_path}")
    assert bad_name.returncode == 2 and "unknown search space 'nope'" in bad_name.stderr
    assert "time_frequency" in bad_name.stderr
    bad_key = main_py(root, "--name=time_frequency", "--set", "lr_modle=1", f"--ray_root_dir={tmp_path}")
    assert bad_key.returncode == 2 and "did you mean 'lr_model'" in bad_key.stderr
    bad_set = main_py(root, "--name=time_frequency", "--set", "lr_model", f"--ray_root_dir={tmp_path}")
    assert bad_set.returncode == 2 and "key=value" in bad_set.stderr
