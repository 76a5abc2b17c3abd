"""TensorBoard logs: Ray's default TBXLoggerCallback writes an event file in every trial folder, and TensorBoard's
own reader finds every numeric metric of progress.csv in it, epoch by epoch, and the trial's config as hparams."""
import json
import math
import re

import numpy as np
import pandas as pd
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.fixtures import TINY_TRIALS

# columns of progress.csv that Ray's TensorBoard logger leaves out on purpose (tensorboardx.py, log_trial_result)
NOT_LOGGED = {"pid", "timestamp", "time_total_s", "training_iteration"}
TEXT_COLUMNS = ("code_version", "node_id", "device", "hostname", "node_ip", "trial_id", "date")  # strings in result.json


def tag(column: str) -> str:
    """The TensorBoard tag of a progress.csv column: Ray's prefix, and tensorboardX turns characters a tag may not
    hold (a space in a class name) into ``_``."""
    return "ray/tune/" + re.sub(r"[^-/\w.]", "_", column)


def read_events(trial_dir):
    acc = event_accumulator.EventAccumulator(str(trial_dir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return acc


def test_every_trial_has_an_event_file(tiny_experiment):
    trials = sorted((tiny_experiment / "time_frequency").glob("train_trial_*"))
    assert len(trials) == TINY_TRIALS
    for trial in trials:
        assert [p.stat().st_size > 0 for p in trial.glob("events.out.tfevents.*")] == [True], trial.name


def test_scalars_equal_progress_csv(tiny_experiment):
    """Every numeric metric, per epoch (step = training_iteration), equals progress.csv in float32; NaN values
    and text metrics are not logged."""
    for trial in sorted((tiny_experiment / "time_frequency").glob("train_trial_*")):
        # text columns read as text: a commit whose short hash is all digits (8959233) read as a number
        progress = pd.read_csv(trial / "progress.csv", dtype={c: str for c in TEXT_COLUMNS})
        assert len(progress) == 2 and list(progress["training_iteration"]) == [1, 2]  # max_epochs 2
        acc = read_events(trial)
        tags = set(acc.Tags()["scalars"])
        numeric = [c for c in progress if c not in NOT_LOGGED and pd.api.types.is_numeric_dtype(progress[c])
                   and not c.startswith("config/")]
        assert {"valid_loss", "valid_acc", "loss", "lambd_est", "test_accuracy"} <= set(numeric)
        for col in numeric:
            rows = progress[progress[col].notna()]
            if rows.empty:
                assert tag(col) not in tags, col
                continue
            events = acc.Scalars(tag(col))
            assert [e.step for e in events] == list(rows["training_iteration"]), col
            assert [e.value for e in events] == [float(np.float32(v)) for v in rows[col]], col
        texts = [c for c in progress if not pd.api.types.is_numeric_dtype(progress[c])]
        assert "code_version" in texts
        assert not any(tag(c) in tags for c in texts)
        # nothing else, but Ray's flag for a report that carried a checkpoint (not a progress.csv column)
        assert tags - {tag(c) for c in numeric} <= {"ray/tune/should_checkpoint"}
        assert "ray/tune/test_recall/one_pulse" in tags  # the class "one pulse"


def test_valid_loss_per_epoch(tiny_experiment):
    """The curve a reader looks at first, checked against the trial's result.json (plain json)."""
    for trial in sorted((tiny_experiment / "time_frequency").glob("train_trial_*")):
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        curve = [(e.step, e.value) for e in read_events(trial).Scalars("ray/tune/valid_loss")]
        assert len(curve) == 2  # max_epochs 2
        for (step, value), row in zip(curve, rows):
            assert step == row["epoch"] + 1
            assert math.isclose(value, row["valid_loss"], rel_tol=1e-6)


def test_config_is_logged_as_hparams(tiny_experiment):
    """At the end of a trial Ray writes its config to TensorBoard's HParams plugin."""
    for trial in sorted((tiny_experiment / "time_frequency").glob("train_trial_*")):
        acc = read_events(trial)
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hparams = dict(start.session_start_info.hparams)
        params = json.loads((trial / "params.json").read_text())
        assert hparams["init_lambd"].number_value == params["init_lambd"]
        assert hparams["trainable"].bool_value == params["trainable"]
        assert hparams["seed"].number_value == params["seed"] in (0, 1)
