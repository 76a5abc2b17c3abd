"""What a kill -9 leaves on storage: tuning.storage's local filesystem writes a file whole or not at all;
tuning.tune_state makes Tune's saves wait for its uploads."""
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs
import pytest

from tuning.storage import AtomicLocalHandler, tune_storage

# writes half of the new content through the named filesystem, says so, and waits to be killed
WRITER = """
import sys, time, pyarrow.fs
sys.path.insert(0, sys.argv[3])
from tuning.storage import tune_storage
fs = pyarrow.fs.LocalFileSystem() if sys.argv[2] == "native" else tune_storage(sys.argv[1])[1]
out = fs.open_output_stream(sys.argv[1])
out.write(b'{"trial_data": [')
out.flush()
print("half written", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("kind", ["native", "atomic"])
def test_writer_killed_mid_file_leaves_the_old_version(root, tmp_path, kind):
    """SIGKILL while a file is half rewritten (Tune's upload of the experiment state, cut off): pyarrow's
    own local filesystem leaves the half (the control), the atomic one the whole previous version."""
    state = tmp_path / "experiment_state-x.json"
    state.write_text('{"trial_data": []}')
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(state), kind, str(root)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "half written"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    if kind == "native":
        assert state.read_text() == '{"trial_data": ['
    else:
        assert state.read_text() == '{"trial_data": []}'
        [part] = [p.name for p in tmp_path.iterdir() if p != state]
        assert part.startswith(".experiment_state-x.json.") and part.endswith(".part")  # not Tune's glob


def test_atomic_filesystem_reads_writes_copies_like_the_local_one(tmp_path):
    """Write, replace, copy a tree (Tune's sync), move, delete, pickle (it travels to the trial processes);
    new files get the permissions a plain open gives."""
    path, fs = tune_storage(f"file://{tmp_path}/st")
    assert path == f"{tmp_path}/st" and tune_storage(str(tmp_path / "st"))[0] == path
    assert tune_storage("s3://bucket/rr?endpoint_override=h:1") == ("s3://bucket/rr?endpoint_override=h:1", None)
    fs.create_dir(path, recursive=True)
    for text in (b"first", b"second, longer"):
        with fs.open_output_stream(f"{path}/a.json") as out:
            out.write(text)
        with fs.open_input_stream(f"{path}/a.json") as source:
            assert source.read() == text
    assert sorted(os.listdir(path)) == ["a.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(f"{path}/a.json").st_mode & 0o777 == 0o666 & ~umask

    src = tmp_path / "staging"
    (src / "trial" / "checkpoint_000001").mkdir(parents=True)
    (src / "trial" / "checkpoint_000001" / "model.pt").write_bytes(os.urandom(3 << 20))  # more than one chunk
    (src / "trial" / "result.json").write_text("{}\n")
    fs.create_dir(f"{path}/exp", recursive=True)
    pyarrow.fs.copy_files(str(src), f"{path}/exp", destination_filesystem=fs)
    for name in ("trial/checkpoint_000001/model.pt", "trial/result.json"):
        assert (tmp_path / "st" / "exp" / name).read_bytes() == (src / name).read_bytes()
    fs.copy_file(f"{path}/exp/trial/result.json", f"{path}/exp/copy.json")
    fs.move(f"{path}/exp/copy.json", f"{path}/exp/moved.json")
    assert (tmp_path / "st" / "exp" / "moved.json").read_text() == "{}\n"
    fs.delete_dir(f"{path}/exp/trial")
    assert sorted(os.listdir(tmp_path / "st" / "exp")) == ["moved.json"]

    again = pickle.loads(pickle.dumps(fs))
    assert again == fs and isinstance(again.handler, AtomicLocalHandler)
    assert again.get_file_info(f"{path}/a.json").size == len(b"second, longer")


class SlowUploads(AtomicLocalHandler):
    """Uploads that take 0.5 s per file: long enough for Tune's next save to come while one runs."""

    def open_output_stream(self, path, metadata):
        time.sleep(0.5)
        return super().open_output_stream(path, metadata)


@pytest.mark.parametrize("patched", [False, True])
def test_a_save_waits_for_the_previous_upload(tmp_path, monkeypatch, patched):
    """Tune's own experiment-state manager: unpatched (the control), the second save rewrites the staging
    file while the first upload is still running (the torn state of a kill -9); with
    ``save_state_safely`` each save finds the previous upload landed."""
    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

    from tests.inprocess import RAY_CPUS
    from tuning import tune_state
    from tuning.runner import init_ray

    init_ray(None, RAY_CPUS)  # the session's Ray (Tune stages in its session folder)

    tune_own = _ExperimentCheckpointManager.sync_up_experiment_state
    tune_own = getattr(tune_own, "__wrapped__", tune_own)  # the session's in-process runs have patched it
    monkeypatch.setattr(_ExperimentCheckpointManager, "sync_up_experiment_state", tune_own)  # put back after
    if patched:
        tune_state.save_state_safely()
        assert _ExperimentCheckpointManager.sync_up_experiment_state.waits_for_upload
    storage = StorageContext(storage_path=str(tmp_path / "st"), experiment_dir_name="exp",
                             storage_filesystem=pyarrow.fs.PyFileSystem(SlowUploads()))
    manager = _ExperimentCheckpointManager(storage=storage, checkpoint_period=0)
    stored = tmp_path / "st" / "exp" / "experiment_state-x.json"
    seen = []

    def save(text):
        def save_fn():
            seen.append(stored.read_text() if stored.exists() else None)  # what the storage holds now
            staging = Path(storage.experiment_driver_staging_path)
            staging.mkdir(parents=True, exist_ok=True)  # as Tune's own save does
            (staging / stored.name).write_text(text)
        return save_fn

    manager.sync_up_experiment_state(save("first"))
    manager.sync_up_experiment_state(save("second"))
    manager.sync_up_experiment_state(save("third"), force=True, wait=True)
    assert stored.read_text() == "third"
    if patched:
        assert seen == [None, "first", "second"]  # each save came after the previous upload had landed
    else:
        assert seen[1] is None  # the second save rewrote the staging file during the first upload
