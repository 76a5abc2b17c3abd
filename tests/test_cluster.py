"""main.py on a real two-node Ray cluster started on this machine.

Head and worker are ``ray start --block`` processes, each leading its own process group
(``start_new_session``), with token authentication (``RAY_AUTH_MODE=token``, the token in a
temporary ``RAY_AUTH_TOKEN_PATH``), one logical GPU each, free ports outside Ray's worker range
(10002-19999) and their own short ``--temp-dir`` (a pytest ``tmp_path`` is too long for Ray's
socket paths). They are always ended by SIGKILL to their process groups, never ``ray stop``.
The driver gets the token path but not ``RAY_AUTH_MODE``: main.py must turn token mode on itself.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures_gtzan import make_gtzan
from tests.test_tune import kill_tree, wait_for_progress

RAY = Path(sys.executable).with_name("ray")
NODE_CPUS = 4  # logical CPUs per node: more than 2 trials' worth, so the GPU share is what caps a node at 2
PROBE = """
import json, sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.time() + 90
while time.time() < deadline:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) == 2:
        break
    time.sleep(0.5)
print(json.dumps({"head" if "node:__internal_head__" in n["Resources"] else "worker": n["NodeID"] for n in alive}))
"""


def free_port(taken: set) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        if not 10000 <= port <= 20000 and port not in taken:
            taken.add(port)
            return port


def wait_for(path: Path, text: str, proc, timeout: float = 90) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = path.read_text() if path.exists() else ""
        if text in log:
            return log
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {path} (exit {proc.poll()}):\n{log[-3000:]}")


class Cluster:
    """A head and a worker node; ``driver_env`` is what main.py runs with."""

    def __init__(self, work: Path):
        self.work = work
        self.temp = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths must fit
        token = work / "auth_token"
        token.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "CUDA_"))}
        base["RAY_AUTH_TOKEN_PATH"] = str(token)
        self.driver_env = dict(base)  # no RAY_AUTH_MODE: main.py sets it
        # the head notices a lost node after 3 missed health checks 1 s apart (Ray's default: 5 x 3 s)
        self.node_env = {**base, "RAY_AUTH_MODE": "token", "RAY_health_check_period_ms": "1000",
                         "RAY_health_check_failure_threshold": "3"}
        self.procs = {}
        self.taken = set()

    def _start(self, role: str, args: list[str]):
        log = self.work / f"{role}.log"
        ports = [f"--{flag}={free_port(self.taken)}" for flag in (
            "node-manager-port", "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
            "runtime-env-agent-port", "metrics-export-port")]
        with open(log, "w") as out:
            self.procs[role] = subprocess.Popen(
                [str(RAY), "start", "--block", f"--num-cpus={NODE_CPUS}", "--num-gpus=1", *ports, *args],
                env=self.node_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return wait_for(log, "Ray runtime started", self.procs[role])

    def start(self) -> None:
        port = free_port(self.taken)
        log = self._start("head", ["--head", f"--port={port}", "--include-dashboard=false",
                                   f"--dashboard-port={free_port(self.taken)}", f"--temp-dir={self.temp}/head"])
        ip = re.search(r"Local node IP: (\S+)", log).group(1)
        self.address = f"{ip}:{port}"
        self._start("worker", [f"--address={self.address}"])
        probe = subprocess.run([sys.executable, "-c", PROBE, self.address], env=self.node_env, capture_output=True,
                               text=True, timeout=150)
        assert probe.returncode == 0, probe.stderr[-3000:]
        self.nodes = json.loads(probe.stdout.strip().splitlines()[-1])
        assert set(self.nodes) == {"head", "worker"}, self.nodes

    def kill(self, role: str) -> None:
        """SIGKILL a node as if its machine was lost: the group its ``ray start --block`` leads (raylet,
        gcs, agents) and the workers those started (each leading a group of its own)."""
        kill_tree(self.procs[role])

    def stop(self) -> None:
        for proc in self.procs.values():
            kill_tree(proc)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def main_py(root, env, *args, timeout=300):
    return subprocess.run([sys.executable, "main.py", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_join_never_hangs(root, cluster, tmp_path):
    """A wrong token: Ray's own error after ~20 s, turned into one line and exit 2. No cluster at the
    address (Ray retries for minutes): the watchdog's line and exit 2 after --connect_timeout. The two
    drivers wait side by side."""
    wrong = tmp_path / "wrong_token"
    wrong.write_text("not-the-token")
    port = free_port(set(cluster.taken))
    drivers = {  # in the order they end, so that each one's time is its own
        "nobody": (cluster.driver_env, [f"--address={cluster.address.split(':')[0]}:{port}", "--connect_timeout=8"]),
        "bad_token": ({**cluster.driver_env, "RAY_AUTH_TOKEN_PATH": str(wrong)},
                      [f"--address={cluster.address}", "--connect_timeout=60"]),
    }
    start = time.time()
    procs = {name: subprocess.Popen([sys.executable, "main.py", *args, f"--storage={tmp_path}/st"], cwd=root, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (env, args) in drivers.items()}
    done = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            done[name] = (proc.returncode, out, err, time.time() - start)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    code, out, err, seconds = done["bad_token"]
    assert code == 2, out[-2000:] + err[-3000:]
    assert "error: could not connect to the Ray cluster" in err
    assert "RAY_AUTH_MODE=token" in err and "auth_token" in err
    assert seconds < 60
    code, out, err, seconds = done["nobody"]
    assert code == 2, out[-2000:] + err[-3000:]
    assert "error: no answer from the Ray cluster" in err and "within 8 s" in err
    assert seconds < 40
    assert not (tmp_path / "st").exists()


def test_prepare_on_every_node(root, cluster, tmp_path):
    """--prepare_only builds the GTZAN cache once per node (shared storage: one decodes, the other
    finds it finished); a data_dir that no node has gives one line per node and exit 2."""
    data = make_gtzan(tmp_path / "gtzan", per_split=1)
    common = ["--name=gtzan", f"--address={cluster.address}", "--prepare_only", "--set", "sample_rate=8000",
              "--set", "clip_seconds=1.2", "--set", f"cache_dir={tmp_path}/cache"]
    run = main_py(root, cluster.driver_env, *common, f"--data_dir={data}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ready = [line for line in run.stdout.splitlines() if "decoded-audio cache ready" in line]
    assert len(ready) == 2, run.stdout[-3000:]
    for node_id in cluster.nodes.values():
        assert any(f"({node_id[:8]})" in line for line in ready), (node_id, ready)
    [cache] = (tmp_path / "cache").iterdir()
    assert (cache / "complete").exists()
    assert "cluster: 2 node(s), 8 CPUs, 2 GPUs" in run.stdout

    missing = main_py(root, cluster.driver_env, *common, f"--data_dir={tmp_path}/nowhere")
    assert missing.returncode == 2, missing.stdout[-3000:] + missing.stderr[-3000:]
    lines = [line for line in missing.stderr.splitlines() if line.startswith("error: node ")]
    ip = cluster.address.split(":")[0]
    assert len(lines) == 2 and all(f"node {ip} (" in line and f"no dataset at {tmp_path}/nowhere" in line
                                   for line in lines), missing.stderr[-3000:]


def intervals(frame: pd.DataFrame) -> list[tuple[str, float, float]]:
    """Per stretch of consecutive rows on one node: a sub-interval of the time the trial held it
    (``timestamp`` is whole seconds: the start is moved 1 s later, the end is the last report)."""
    out = []
    for _, rows in frame.groupby((frame["node_id"] != frame["node_id"].shift()).cumsum()):
        start = rows["timestamp"].iloc[0] - rows["time_this_iter_s"].iloc[0] + 1
        out.append((rows["node_id"].iloc[0], start, rows["timestamp"].iloc[-1]))
    return out


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, e in spans if e > s] + [(e, -1) for s, e in spans if e > s])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def test_grid_survives_losing_a_node(root, cluster, tmp_path):
    """4 trials at half a logical GPU each (4 CPUs a node: the GPU share is what limits a node to 2) spread
    over both nodes; the worker node is SIGKILLed mid-grid and its trials finish on the head from their
    checkpoints, in the same run. The head's trials (24 epochs of 1,500 signals, about 15 s here) outlast
    the start of the worker's trial processes, whose runtime environment test_prepare_on_every_node has
    already unpacked: a head process that finishes first would otherwise take a waiting trial (Tune
    reuses actors)."""
    exp = tmp_path / "st" / "time_frequency"
    args = ["main.py", "--name=time_frequency", f"--address={cluster.address}", f"--storage=file://{tmp_path}/st",
            "--max_epochs=24", "--gpus_per_trial=0.5", "--set", "device=cpu", "--set", "n_samples=1500",
            "--set", 'model_name="linear_net"', "--set", "init_lambd=[1.276,31.9]",
            "--set", "checkpoint_every=1"]
    log = tmp_path / "main.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=root, env=cluster.driver_env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    worker = cluster.nodes["worker"]

    def cut_off(rows):  # a trial that has trained 2 epochs on the worker and is not finished
        return [name for name, r in rows.items() if (r["node_id"] == worker).sum() >= 2 and not r["done"].any()]

    try:
        cut = cut_off(wait_for_progress(proc, exp, cut_off, timeout=300))[0]
        cluster.kill("worker")
        proc.wait(timeout=420)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    out = log.read_text()
    assert proc.returncode == 0, out[-5000:]
    assert "4 trials finished, 0 unfinished, 0 errored" in out
    assert "resources per trial {'cpu': 1, 'gpu': 0.5}" in out

    dirs = sorted(p for p in exp.iterdir() if p.is_dir() and p.name.startswith("train_trial"))
    configs = {(c["trainable"], c["init_lambd"]) for c in (json.loads((d / "params.json").read_text()) for d in dirs)}
    assert len(dirs) == 4 and len(configs) == 4  # one trial directory per configuration
    frames = {d.name: pd.read_csv(d / "progress.csv") for d in dirs}
    for name, frame in frames.items():
        done = frame[frame["done"].astype(bool)]
        assert len(done) == 1 and not pd.isna(done["test_accuracy"].iloc[0]), name  # finished exactly once
        assert done["epoch"].iloc[0] == 23 and (frame["device"] == "cpu").all(), name

    nodes = {n for frame in frames.values() for n in frame["node_id"]}
    assert nodes == {cluster.nodes["head"], worker}
    moved = frames[cut]  # the trial cut off on the worker went on on the head from a checkpoint
    assert moved["node_id"].iloc[-1] == cluster.nodes["head"]
    after = moved[moved.index > moved.index[moved["node_id"] == worker][-1]]
    assert after["epoch"].iloc[0] > 0 and (moved["epoch"] == 0).sum() == 1

    spans = [span for frame in frames.values() for span in intervals(frame)]
    at_once = {node: most_at_once([(s, e) for n, s, e in spans if n == node]) for node in nodes}
    assert max(at_once.values()) >= 2 and all(n <= 2 for n in at_once.values()), at_once
