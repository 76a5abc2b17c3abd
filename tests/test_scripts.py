"""README claims about main.py and the scripts that need a (tiny) real run: errored trials (exit code 1, one
line per cause), --max_concurrent and --cpus_per_trial, run_experiments.sh through its environment variables."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from tests.inprocess import main_py, ray_of

TINY = ["--name=time_frequency", "--num_cpus=2", "--max_epochs=2", "--set", "n_samples=60", "--set",
        "model_name=linear_net", "--set", "trainable=True"]


def spans(exp: Path) -> list[tuple[float, float, int]]:
    """(start, end, process id) of every trial, from its result.json rows."""
    out = []
    for result in sorted(exp.glob("train_trial*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        out.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"], rows[0]["pid"]))
    return out


def test_errored_trials_exit_1_with_one_line_per_cause(root, tmp_path, monkeypatch):
    """FSDD trials on a folder without recordings: each fails in its own code, on any machine (with a GPU or
    not), for a lasting cause. The driver names it once, with the count, and does not advise a rerun; the
    traceback is in each trial's error.txt, not logged by Tune once per trial (the interrupted run that
    should be rerun: tests/test_tune.py::test_interrupt_then_resume)."""
    empty = tmp_path / "no-fsdd"
    empty.mkdir()
    monkeypatch.delenv("TUNE_PRINT_ALL_TRIAL_ERRORS", raising=False)  # main.py's default: Tune logs no traceback
    tracebacks = []
    handler = logging.Handler()
    handler.emit = lambda record: tracebacks.append(record) if record.exc_info else None
    logging.getLogger("ray.tune").addHandler(handler)
    try:
        done = main_py(root, "--name=audio_mnist", "--max_epochs=1", "--set", "trainable=True", "--set",
                       "init_lambd=[13.0,47.0]", f"--data_dir={empty}", "--max_failures=0",
                       f"--ray_root_dir={tmp_path}/rr")
    finally:
        logging.getLogger("ray.tune").removeHandler(handler)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 trials finished, 0 unfinished, 2 errored" in done.stdout
    assert f"2 errored: FileNotFoundError: no FSDD recordings at {empty}/recordings: download them" in done.stderr
    assert "rerun the same command" not in done.stderr and "fix the cause first" in done.stderr
    assert tracebacks == [] and "Traceback" not in done.stdout + done.stderr
    errors = list((tmp_path / "rr/audio_mnist").glob("train_trial*/error.txt"))
    assert len(errors) == 2 and all("no FSDD recordings at" in e.read_text() for e in errors)
    assert f"  traceback: {tmp_path}/rr/audio_mnist/train_trial_" in done.stderr


def test_max_concurrent_and_cpus_per_trial_serialise_trials(root, tmp_path):
    """Two trials of a few seconds on a 2-CPU Ray overlap by default, each in a process of its own;
    --max_concurrent=1 or 2 CPUs per trial runs them one after the other, in one process (Tune reuses
    it), so those runs can be short."""
    pair = ["--set", "init_lambd=[1.276,31.9]"]
    cpu_only = "--gpus_per_trial=0"  # on a GPU machine too: else Ray gives each trial a GPU share as well
    runs = {}
    with ray_of(2):  # one 2-CPU Ray for the three runs
        for flag, size in (("", ["--max_epochs=5", "--set", "n_samples=1000"]), ("--max_concurrent=1", []),
                           ("--cpus_per_trial=2", [])):
            rr = tmp_path / (flag.strip("-").split("=")[0] or "default")
            runs[flag] = (main_py(root, *TINY, *size, *pair, cpu_only, *([flag] if flag else []),
                                  f"--ray_root_dir={rr}"), rr)
    for flag, (done, rr) in runs.items():
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        if flag == "--cpus_per_trial=2":
            assert "resources per trial {'cpu': 2.0}" in done.stdout
        (a_start, a_end, a_pid), (b_start, b_end, b_pid) = sorted(spans(rr / "time_frequency"))
        if flag:
            assert a_pid == b_pid and a_end <= b_start + 1, (flag, a_end, b_start)  # one after the other
        else:
            assert a_pid != b_pid and b_start + 1 < a_end, (a_end, b_start)  # the control: side by side


def test_run_experiments_sh_on_a_tiny_budget(root, tmp_path):
    env = {**os.environ, "RAY_ROOT_DIR": str(tmp_path / "rr"), "NUM_SAMPLES": "1", "MAX_EPOCHS": "1",
           "DATA_DIR": str(tmp_path / "no-fsdd"), "GTZAN_DIR": str(tmp_path / "no-gtzan"),
           "FMA_DIR": str(tmp_path / "no-fma"), "ESC50_DIR": str(tmp_path / "no-esc50"),
           "AUDIOMNIST_DIR": str(tmp_path / "no-audiomnist"), "EMBEDDINGS_DIR": str(tmp_path / "no-embeddings"),
           "VENV": str(Path(sys.executable).parent.parent),
           "MAIN_ARGS": "--num_cpus=1 --set n_samples=60 --set model_name=linear_net --set init_lambd=6.38"}
    done = subprocess.run(["sh", "run_experiments.sh"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 trials finished, 0 unfinished, 0 errored" in done.stdout  # trainable and fixed, 1 sample
    from tuning.experiments import list_experiments  # every registered experiment is run or skipped
    for name in list_experiments():
        if name != "time_frequency":
            assert f"skipping {name} (" in done.stdout, name  # (sh download_data.sh ...) or (put it there, ...)
    rows = [json.loads(line) for r in (tmp_path / "rr/time_frequency").glob("train_trial*/result.json")
            for line in r.read_text().splitlines() if line.strip()]
    assert {row["epoch"] for row in rows} == {0}  # MAX_EPOCHS=1 reached main.py
