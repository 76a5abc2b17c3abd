"""The command line end to end with real Ray Tune runs: run, rerun (resume), interrupt, kill -9, a failed
trial's restart (both resumes bit-equal to an uninterrupted run), storage URIs, figures, errors."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures import TINY_GRID, TINY_TRIALS
from tests.inprocess import main_py, shutdown

TINY = ["--name=time_frequency", "--num_cpus=2", "--set", "n_samples=150", "--set", 'model_name="linear_net"']
# The grid the two kill tests cut off (the failed-trial test runs one of its trials) and that `uninterrupted`
# runs once without a cut: trainable/fixed x lambda 1.276/31.9, seed 0, 20 epochs, a checkpoint after each.
RESUME_GRID = [*TINY, "--max_epochs=20", "--set", "init_lambd=[1.276,31.9]", "--set", "checkpoint_every=1"]
# what every report of a resumed trial must equal, bit for bit, in the uninterrupted run's report of that epoch
# (the trials are deterministic and seeded from their config); the final one's test metrics too
EXACT = ("loss", "valid_loss", "valid_acc", "best_valid_loss", "best_epoch", "lambd_est", "best_lambd_est")
EXACT_FINAL = ("test_loss", "test_accuracy", "test_accuracy_vote", "test_macro_f1")


def trial_dirs(exp):
    return sorted(p for p in Path(exp).iterdir() if p.is_dir() and p.name.startswith("train_trial"))


def group_and_children(pgid: int) -> set[int]:
    """The processes of the group ``pgid`` and their descendants (Ray's workers lead their own groups)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = (int(fields[1]), int(fields[2]))  # ppid, pgid
    found = {pid for pid, (_, group) in parents.items() if group == pgid}
    while True:
        more = {pid for pid, (ppid, _) in parents.items() if ppid in found} - found
        if not more:
            return found
        found |= more


def kill_tree(proc) -> None:
    """SIGKILL the process group ``proc`` leads (started with ``start_new_session``) and everything it
    started, Ray's workers included (they lead groups of their own)."""
    for pid in group_and_children(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def reports(trial: Path) -> list[dict]:
    """A trial's reports in order, from its result.json (JSON floats read back bit for bit)."""
    return [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]


def reports_by_config(exp) -> dict[str, list[dict]]:
    """Each trial's reports, keyed by its whole config (params.json as sorted JSON)."""
    return {json.dumps(json.loads((d / "params.json").read_text()), sort_keys=True): reports(d)
            for d in trial_dirs(exp)}


@pytest.fixture(scope="module")
def uninterrupted(root, tmp_path_factory) -> dict[str, dict[int, dict]]:
    """``RESUME_GRID`` run once to its end without a cut (main.py in this process): each trial's report
    of every epoch, keyed by config (see :func:`reports_by_config`) and epoch."""
    storage = tmp_path_factory.mktemp("uninterrupted")
    run = main_py(root, *RESUME_GRID, f"--storage={storage}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    by_config = reports_by_config(storage / "time_frequency")
    return {config: {r["epoch"]: r for r in rows} for config, rows in by_config.items()}


def assert_as_uninterrupted(exp, reference: dict[str, dict[int, dict]]) -> None:
    """Every trial of ``exp`` reported what the uninterrupted run of its config did, bit for bit: each
    epoch's ``EXACT`` values (an epoch reported twice, before a kill and again after the resume, both
    times), and the final test metrics."""
    for config, rows in reports_by_config(exp).items():
        expected = reference[config]
        for row in rows:
            want = expected[row["epoch"]]
            assert {k: row[k] for k in EXACT} == {k: want[k] for k in EXACT}, (config, row["epoch"], row["pid"])
        final, want = rows[-1], expected[max(expected)]
        assert final["done"] and want["done"]
        assert {k: final[k] for k in EXACT_FINAL} == {k: want[k] for k in EXACT_FINAL}, config


def assert_restored(trial: Path) -> None:
    """The trial ran in two processes and the second went on from a checkpoint of the first: it started
    after epoch 0, which only the first ran, at most one epoch after the last the first reported."""
    rows = reports(trial)
    pids = list(dict.fromkeys(r["pid"] for r in rows))
    assert len(pids) == 2, (trial.name, pids)
    first = [r["epoch"] for r in rows if r["pid"] == pids[0]]
    later = [r["epoch"] for r in rows if r["pid"] == pids[1]]
    assert first[0] == 0 and 0 < later[0] <= first[-1] + 1, (trial.name, first, later)
    assert [r["epoch"] for r in rows].count(0) == 1, trial.name


def progress_rows(exp) -> dict[str, pd.DataFrame]:
    """Each trial's progress.csv so far (trials whose file is being written are left out)."""
    out = {}
    for path in Path(exp).glob("train_trial*/progress.csv") if Path(exp).exists() else []:
        try:
            out[path.parent.name] = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            pass
    return out


def wait_for_progress(driver, exp, ready, timeout=240) -> dict[str, pd.DataFrame]:
    """Poll the progress files until ``ready(rows)`` holds; fail if ``driver`` (a ``Popen`` or a
    ``threading.Thread``) ends first."""
    running = driver.is_alive if isinstance(driver, threading.Thread) else lambda: driver.poll() is None
    deadline = time.time() + timeout
    while time.time() < deadline and running():
        rows = progress_rows(exp)
        if ready(rows):
            return rows
        time.sleep(0.3)
    seen = [(name, len(rows)) for name, rows in progress_rows(exp).items()]
    raise AssertionError(f"progress never ready (driver running: {running()}): {seen}")


def test_rerun_of_a_finished_experiment_starts_nothing(root, tiny_experiment, tmp_path):
    """The same command again on a finished experiment (a copy of the session's, moved elsewhere):
    it resumes, finds every trial done, and trains nothing."""
    storage = tmp_path / "rr"
    shutil.copytree(tiny_experiment, storage)
    exp = storage / "time_frequency"
    dirs = trial_dirs(exp)
    rows = {d.name: len(pd.read_csv(d / "progress.csv")) for d in dirs}
    assert len(dirs) == TINY_TRIALS and set(rows.values()) == {2}

    again = main_py(root, *TINY_GRID, f"--ray_root_dir={storage}", f"--data_dir={tmp_path}/absent")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resuming the experiment in {exp}" in again.stdout
    assert f"{TINY_TRIALS} trials finished, 0 unfinished, 0 errored" in again.stdout
    assert trial_dirs(exp) == dirs  # nothing started twice
    assert {d.name: len(pd.read_csv(d / "progress.csv")) for d in dirs} == rows


def test_figures_and_tables_of_a_run(tiny_figures):
    out, _ = tiny_figures
    for name in ("figures/data_example.pdf", "figures/data_example.png", "figures/test_time_frequency.pdf",
                 "figures/test_time_frequency.png", "figures/lambda_curves_time_frequency.pdf",
                 "tables/test_time_frequency.md", "tables/test_time_frequency.tex"):
        assert (out / name).stat().st_size > 0, name
    table = (out / "tables/test_time_frequency.md").read_text()
    assert "98.5 ± 0.2" in table and "| linear_net |" in table


def test_interrupt_then_resume(root, tmp_path):
    """Ctrl-C (SIGINT to main.py) mid-run, then the same command: the trial finishes, every epoch trained.
    The run's output is read while waiting (a full pipe would stall it) and its process group is killed
    whatever happens."""
    args = [*TINY, "--max_epochs=20", "--set", "init_lambd=6.38", "--set", "trainable=True",
            "--set", "checkpoint_every=1", f"--ray_root_dir={tmp_path}/rr"]
    proc = subprocess.Popen([sys.executable, "main.py", *args], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    exp = tmp_path / "rr" / "time_frequency"
    try:
        rows = wait_for_progress(proc, exp, lambda r: any(len(p) >= 5 for p in r.values()))
        [progress] = rows.values()
        assert not progress["done"].any()  # really mid-run when interrupted
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        reader.join(timeout=30)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    out = "".join(lines)
    assert proc.returncode == 1, out[-3000:]
    assert "rerun the same command to resume" in out

    resumed = main_py(root, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming the experiment" in resumed.stdout
    [trial] = trial_dirs(exp)
    progress = pd.read_csv(trial / "progress.csv")
    final = progress.iloc[-1]
    assert final["done"] and final["epoch"] == 19 and not pd.isna(final["test_accuracy"])
    assert sorted(set(progress["epoch"])) == list(range(20))  # every epoch trained


def test_clear_errors(root, tmp_path):
    bad_name = main_py(root, "--name=nope", f"--ray_root_dir={tmp_path}")
    assert bad_name.returncode == 2 and "unknown experiment 'nope'" in bad_name.stderr
    assert "time_frequency" in bad_name.stderr
    bad_key = main_py(root, "--name=time_frequency", "--set", "lr_modle=1", f"--ray_root_dir={tmp_path}")
    assert bad_key.returncode == 2 and "did you mean 'lr_model'" in bad_key.stderr
    bad_set = main_py(root, "--name=time_frequency", "--set", "lr_model", f"--ray_root_dir={tmp_path}")
    assert bad_set.returncode == 2 and "key=value" in bad_set.stderr


def test_storage_locations():
    from tuning.storage import experiment_location, storage_root

    assert storage_root("s3://bucket/prefix/", "ignored") == "s3://bucket/prefix"  # never through Path.resolve
    assert storage_root(None, "file:///abs/results") == "file:///abs/results"
    assert experiment_location("s3://bucket/prefix", "gtzan") == "s3://bucket/prefix/gtzan"
    assert storage_root("rel/results", "ignored") == str(Path("rel/results").resolve())
    assert storage_root(None, "~/rr") == str(Path.home() / "rr")
    assert experiment_location("/abs/st", "fma") == "/abs/st/fma"


def test_driver_killed_then_rerun(root, tmp_path, uninterrupted):
    """kill -9 of main.py and its local Ray mid-grid; the same command finishes every trial exactly once,
    the trials cut off going on from a checkpoint, and every trial ends as the uninterrupted run did, bit
    for bit. Storage is a file:// URI; a rerun with another space notes it, --fresh moves the experiment aside."""
    storage = f"file://{tmp_path}/st"
    args = [*RESUME_GRID, f"--storage={storage}"]
    exp = tmp_path / "st" / "time_frequency"
    proc = subprocess.Popen([sys.executable, "main.py", *args], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:  # two trials mid-run: a few epochs reported, none finished
        before = wait_for_progress(proc, exp, lambda rows: sum(len(r) >= 4 for r in rows.values()) >= 2
                                   and not any(r["done"].astype(bool).any() for r in rows.values()))
    finally:
        kill_tree(proc)
    assert (exp / "harness_space.json").exists()

    again = main_py(root, *args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming the experiment in " + storage + "/time_frequency" in again.stdout
    assert "4 trials finished, 0 unfinished, 0 errored" in again.stdout
    dirs = trial_dirs(exp)
    configs = {(c["trainable"], c["init_lambd"]) for c in (json.loads((d / "params.json").read_text()) for d in dirs)}
    assert len(dirs) == 4 and len(configs) == 4  # one trial directory per configuration
    for d in dirs:
        progress = pd.read_csv(d / "progress.csv")
        done = progress[progress["done"].astype(bool)]
        assert len(done) == 1 and done["epoch"].iloc[0] == 19 and not pd.isna(done["test_accuracy"].iloc[0]), d.name
        assert set(progress["epoch"]) == set(range(20)), d.name
    for name, rows in before.items():  # the trials cut off went on from a checkpoint, not from scratch
        if len(rows) >= 4:
            assert_restored(exp / name)
    assert_as_uninterrupted(exp, uninterrupted)

    changed = main_py(root, *args, "--set", "noise_std=0.4")
    assert changed.returncode == 0 and "was started with a different search space" in changed.stdout
    assert trial_dirs(exp) == dirs
    fresh = main_py(root, *TINY, "--max_epochs=1", "--set", "init_lambd=6.38", f"--storage={storage}/", "--fresh")
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    assert f"moved the previous experiment to {storage}/time_frequency.old-" in fresh.stdout
    [aside] = tmp_path.joinpath("st").glob("time_frequency.old-*")
    assert len(trial_dirs(aside)) == 4 and len(trial_dirs(exp)) == 2


def test_failed_trial_restarts_from_checkpoint(root, tmp_path, uninterrupted):
    """SIGKILL of a running trial's process: with --max_failures=1 Tune restarts the trial from its last
    checkpoint in the same run (a new process, epoch 0 trained once), the trial ends as the uninterrupted run
    of its config did, bit for bit, and the experiment stores the setting. The trial is one of
    ``RESUME_GRID``'s. The driver is main.py in a thread of this process (Tune catches no signals there);
    if the test fails first, ending this process's Ray ends the run with it."""
    args = [*RESUME_GRID, "--set", "init_lambd=31.9", "--set", "trainable=True", "--max_failures=1",
            f"--storage={tmp_path}/st"]
    exp = tmp_path / "st" / "time_frequency"
    done = {}
    driver = threading.Thread(target=lambda: done.update(run=main_py(root, *args)), daemon=True)
    driver.start()
    try:
        rows = wait_for_progress(driver, exp, lambda rows: any(len(r) >= 4 for r in rows.values()))
        [frame] = rows.values()
        os.kill(int(frame["pid"].iloc[-1]), signal.SIGKILL)  # the trial's worker process
        driver.join(timeout=240)
    finally:
        if driver.is_alive():
            shutdown()
            driver.join(timeout=60)
    run = done["run"]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    assert "1 trials finished, 0 unfinished, 0 errored" in run.stdout
    [trial] = trial_dirs(exp)
    assert_restored(trial)  # in a new process, from a checkpoint
    progress = pd.read_csv(trial / "progress.csv")
    assert progress["done"].astype(bool).sum() == 1 and progress["epoch"].iloc[-1] == 19
    assert_as_uninterrupted(exp, uninterrupted)

    from ray import tune

    from training.trial import train_trial
    run_config = tune.Tuner.restore(str(exp), trainable=train_trial)._local_tuner.get_run_config()
    assert run_config.failure_config.max_failures == 1 and run_config.checkpoint_config.num_to_keep == 2


def test_s3_storage(root, tmp_path, s3):
    """--storage=s3://... (moto's local S3): run, resume with the space note, --fresh moves it aside."""
    import pyarrow.fs

    endpoint, fs = s3
    storage = f"s3://results/rr?endpoint_override={endpoint}&scheme=http"
    args = [*TINY, "--max_epochs=1", "--set", "init_lambd=6.38", f"--storage={storage}",
            f"--ray_root_dir={tmp_path}/unused"]
    first = main_py(root, *args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "experiment s3://results/rr/time_frequency;" in first.stdout  # the query (keys) is not printed
    again = main_py(root, *args, "--set", "noise_std=0.4")
    assert again.returncode == 0 and "was started with a different search space" in again.stdout
    assert "resuming the experiment in s3://results/rr/time_frequency" in again.stdout
    fresh = main_py(root, *args, "--fresh")
    assert fresh.returncode == 0
    assert "moved the previous experiment to s3://results/rr/time_frequency.old-" in fresh.stdout
    names = {info.base_name for info in fs.get_file_info(pyarrow.fs.FileSelector("results/rr"))}
    assert "time_frequency" in names and any(n.startswith("time_frequency.old-") for n in names)
    assert not (tmp_path / "unused").exists()
