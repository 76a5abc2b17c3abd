"""MLflow tracking (``main.py --mlflow URI``, tuning/tracking.py): a real 2-trial, 2-epoch grid logged through Ray
Tune's MLflowLoggerCallback, read back with MLflow's own client (not our code) and checked against the trials'
params.json and result.json; a rerun (resume) adds nothing; a trial resumed mid-way continues its run; off by
default; a bad URI refused before Ray."""
import json
import math
import os
from pathlib import Path

import pytest

from tests.inprocess import main_py

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports from the tests
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3.17 refuses to read a file store without it

from mlflow.tracking import MlflowClient  # noqa: E402

# 2 trials (trainable / fixed DMEL window, seed 0) of 2 epochs on 150 signals
GRID = ["--name=time_frequency", "--num_cpus=2", "--max_epochs=2", "--set", "n_samples=150",
        "--set", 'model_name="linear_net"', "--set", "init_lambd=31.9"]
EPOCHS, TRIALS = 2, 2
CHECKED = ("loss", "valid_loss", "valid_acc", "best_valid_loss", "lambd_est", "test_accuracy", "training_iteration")


def trial_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in exp.iterdir() if p.is_dir() and p.name.startswith("train_trial"))


def reports(trial: Path) -> list[dict]:
    return [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]


def flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def same(a: float, b) -> bool:
    b = float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def snapshot(client: MlflowClient, experiment_id: str) -> dict:
    """Every run of the experiment: its name -> (status, params, the history of each CHECKED metric, values as
    text: NaN equals NaN)."""
    return {run.info.run_name: (run.info.status, dict(run.data.params),
                                {key: [(m.step, repr(m.value)) for m in client.get_metric_history(run.info.run_id, key)]
                                 for key in CHECKED})
            for run in client.search_runs([experiment_id])}


@pytest.fixture(scope="module")
def tracked(root, tmp_path_factory):
    """The grid run once with ``--mlflow file://<tmp>/mlruns``: ``(storage, client, experiment, what it printed)``."""
    tmp = tmp_path_factory.mktemp("mlflow")
    storage, store = tmp / "rr", tmp / "mlruns"
    run = main_py(root, *GRID, f"--storage={storage}", f"--mlflow={store.as_uri()}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    client = MlflowClient(tracking_uri=store.as_uri())
    return storage, client, client.get_experiment_by_name("time_frequency"), run


def test_one_run_per_trial(tracked):
    storage, client, experiment, _ = tracked
    assert experiment is not None  # the MLflow experiment is named as the Tune experiment
    runs = client.search_runs([experiment.experiment_id])
    trials = trial_dirs(storage / "time_frequency")
    assert len(runs) == len(trials) == TRIALS
    by_id = {run.data.tags["trial_id"]: run for run in runs}
    for trial in trials:
        last = reports(trial)[-1]
        run = by_id[last["trial_id"]]
        assert run.info.status == "FINISHED"
        assert run.info.run_name == run.data.tags["trial_name"] and last["trial_id"] in run.info.run_name
        assert run.data.tags["code_version"] == last["code_version"]  # the commit the trial recorded


def test_params_equal_trial_configs(tracked):
    storage, client, experiment, _ = tracked
    by_id = {run.data.tags["trial_id"]: run for run in client.search_runs([experiment.experiment_id])}
    for trial in trial_dirs(storage / "time_frequency"):
        config = json.loads((trial / "params.json").read_text())
        params = by_id[reports(trial)[-1]["trial_id"]].data.params
        assert params == {key: str(value) for key, value in flat(config).items()}
    assert {run.data.params["trainable"] for run in by_id.values()} == {"True", "False"}


def test_metrics_per_epoch_equal_result_json(tracked):
    """One entry per epoch at step training_iteration, the value of result.json; the final test metrics too."""
    storage, client, experiment, _ = tracked
    by_id = {run.data.tags["trial_id"]: run for run in client.search_runs([experiment.experiment_id])}
    for trial in trial_dirs(storage / "time_frequency"):
        rows = reports(trial)
        assert len(rows) == EPOCHS
        run = by_id[rows[-1]["trial_id"]]
        for key in CHECKED:
            history = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in history] == [row["training_iteration"] for row in rows] == [1, 2], key
            assert all(same(m.value, row[key]) for m, row in zip(history, rows)), key
        assert math.isnan(client.get_metric_history(run.info.run_id, "test_accuracy")[0].value)  # before the test
        final = rows[-1]["test_accuracy"]
        assert 0 <= final <= 1 and run.data.metrics["test_accuracy"] == final
        assert run.data.metrics["test_loss"] == rows[-1]["test_loss"]
        assert "code_version" not in run.data.metrics  # text: not a metric
        assert not [key for key in run.data.metrics if key.startswith("config/")]  # the config: parameters only


def test_rerun_adds_nothing(root, tracked):
    """The same command again resumes the finished experiment: no run is added or changed."""
    storage, client, experiment, first = tracked
    before = snapshot(client, experiment.experiment_id)
    again = main_py(root, *GRID, f"--storage={storage}", f"--mlflow={client.tracking_uri}")
    assert again.returncode == 0 and "resuming the experiment" in again.stdout, again.stdout[-3000:]
    assert snapshot(client, experiment.experiment_id) == before


@pytest.mark.parametrize("scheme", ["file", "sqlite"])
def test_a_resumed_trial_continues_its_run(tmp_path, scheme):
    """What a rerun after a kill does, without the kill: the driver logged epochs 1-3 of a trial and died (its run
    left RUNNING); the new driver's callback (a new object: Ray's keeps its trial -> run map in memory) gets the
    trial again, resumed from its checkpoint after epoch 1, which reports epochs 2-4. One run, every epoch once."""
    from ray.tune.experiment import Trial

    from tuning.tracking import tracking_callbacks

    uri = (tmp_path / "mlruns").as_uri() if scheme == "file" else f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"
    trial = Trial("train_trial", config={"seed": 0, "lr": 0.1}, stub=True)

    def driver(epochs, end):
        [callback] = tracking_callbacks(uri, "resume_check")
        callback.setup()
        callback.on_trial_start(iteration=0, trials=[trial], trial=trial)
        for epoch in epochs:
            callback.on_trial_result(iteration=epoch, trials=[trial], trial=trial,
                                     result={"training_iteration": epoch, "loss": 1 / epoch, "node_ip": "1.2.3.4"})
        if end:
            callback.on_trial_complete(iteration=epochs[-1], trials=[trial], trial=trial)

    driver([1, 2, 3], end=False)
    driver([2, 3, 4], end=True)
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("resume_check").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params == {"seed": "0", "lr": "0.1"}
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == \
        [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.25)]


def test_off_by_default(root, tmp_path):
    """Without --mlflow nothing is logged: no callback, no store in the working folder (MLflow's own default
    would be ./mlflow.db or ./mlruns) nor at --mlflow's default place."""
    import main
    from tuning.tracking import DEFAULT_URI, tracking_callbacks

    assert main.parse_args([]).mlflow is None and tracking_callbacks(None, "time_frequency") == []
    assert main.parse_args(["--mlflow"]).mlflow == DEFAULT_URI == f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    default_store = root / "mlruns"
    had = default_store.exists()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run = main_py(cwd, *GRID, f"--storage={tmp_path / 'rr'}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert len(trial_dirs(tmp_path / "rr" / "time_frequency")) == TRIALS
    assert sorted(p.name for p in cwd.iterdir()) == []
    assert default_store.exists() == had


@pytest.mark.parametrize("uri, says", [
    ("{file}", "is a file; a file store is a folder"),
    ("sqlite:///{tmp}", "is a folder; a SQLite store is a file"),
    ("{file}/below/mlruns", "is a file, not a folder"),
    ("http://", "a server URI needs a host"),
    ("s3://bucket/mlruns", "unknown scheme 's3'"),
])
def test_bad_uri_refused_before_ray(root, tmp_path, uri, says):
    (tmp_path / "a_file").write_text("x")
    uri = uri.format(file=tmp_path / "a_file", tmp=tmp_path)
    run = main_py(root, *GRID, f"--storage={tmp_path / 'rr'}", f"--mlflow={uri}")
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert lines[0].startswith(f"error: --mlflow={uri}: ") and says in lines[0], lines[0]
    assert not (tmp_path / "rr").exists()
