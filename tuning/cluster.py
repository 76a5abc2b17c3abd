"""Joining a Ray cluster without hanging, and preparing the data on every node before a grid starts.

:func:`connect` wraps ``ray.init(address=...)``. Ray 2.60 enables token authentication for an
explicit address only when ``RAY_AUTH_MODE=token`` is exported; without it a driver facing a
cluster with token auth retries ``InvalidAuthToken`` for about 20 s and raises ``ConnectionError``,
and a wrong address is retried for minutes. So :func:`connect` exports ``RAY_AUTH_MODE=token``
when the user set no mode and a token is at hand, turns Ray's errors into one line saying what to
check, and gives up after ``timeout_s`` with that line and exit status 2.

:func:`prepare_on_nodes` runs :func:`corpora.prepare` on every alive node that can run a trial,
one Ray task per node pinned to it and holding all of its CPUs, so each node's decoded-audio cache
exists (or, on shared storage, is found finished) before any trial starts, and a node without the
data is reported by its IP and the missing path instead of failing trials one by one.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path


class ClusterError(RuntimeError):
    """The cluster could not be joined, or a node lacks the data; the message says what to check."""


def token_source() -> str | None:
    """Where this process would read a Ray auth token from (``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``, Ray 2.60's order), or None when there is none."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return path if Path(path).expanduser().is_file() else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def _hint() -> str:
    mode = os.environ.get("RAY_AUTH_MODE", "unset")
    token = token_source() or "none found"
    return ("check the address (`ray start --head` prints it), that every node was started with RAY_AUTH_MODE=token "
            "and that this machine holds the cluster's token (~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or "
            f"RAY_AUTH_TOKEN; `ray get-auth-token` on the head prints it) [here: RAY_AUTH_MODE={mode}, "
            f"token: {token}]")


def connect(address: str, runtime_env: dict, timeout_s: float = 60.0) -> None:
    """``ray.init(address=address)`` that never hangs: raises :class:`ClusterError` on a connection
    or authentication error, and after ``timeout_s`` seconds without an answer prints one line to
    stderr and ends the process with status 2 (``ray.init`` cannot be interrupted from Python)."""
    import ray
    from ray.exceptions import AuthenticationError

    if "RAY_AUTH_MODE" not in os.environ and token_source() is not None:
        # Ray 2.60 never turns token auth on for an explicit address; it reads the mode once at import,
        # so refresh its config the way ray.init does for address="auto" (Config.initialize)
        from ray._raylet import Config
        os.environ["RAY_AUTH_MODE"] = "token"
        Config.initialize("")

    def give_up():
        print(f"error: no answer from the Ray cluster at {address} within {timeout_s:g} s; {_hint()}",
              file=sys.stderr, flush=True)
        os._exit(2)

    timer = threading.Timer(timeout_s, give_up)
    timer.daemon = True
    timer.start()
    try:
        ray.init(address=address, runtime_env=runtime_env)
    except (ConnectionError, AuthenticationError, TimeoutError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClusterError(f"could not connect to the Ray cluster at {address} ({first[:200]}); {_hint()}") from None
    finally:
        timer.cancel()


def cluster_summary() -> dict:
    """``{"nodes": alive nodes, "CPU": total, "GPU": total}`` of the connected cluster."""
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    return {"nodes": len(alive), "CPU": total.get("CPU", 0), "GPU": total.get("GPU", 0)}


def trial_nodes(resources: dict) -> list[dict]:
    """The alive nodes (``ray.nodes()`` entries) whose total resources fit one trial's ``resources``
    (``{"cpu": ..., "gpu": ...}``)."""
    import ray

    cpu, gpu = resources.get("cpu", 0), resources.get("gpu", 0)
    return [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= cpu
            and n["Resources"].get("GPU", 0) >= gpu]


def _node_label(ip: str, node_id: str) -> str:
    return f"node {ip} ({node_id[:8]})"


# corpora.prepare in a fresh interpreter: its decoding pool forks, and forking a Ray worker (a process with
# Ray's threads) can deadlock the child (seen here: the pool's worker stuck on a futex, the task waiting forever)
_PREPARE = """
import json, sys
from corpora import prepare
configs = json.loads(open(sys.argv[1]).read())
try:
    result = {"settings": prepare(configs), "error": None}
except (FileNotFoundError, ValueError, OSError) as err:
    result = {"settings": 0, "error": str(err)}
open(sys.argv[2], "w").write(json.dumps(result))
"""


def _prepare_here(configs: list[dict], workers: int) -> dict:
    """The per-node task: check each ``data_dir`` exists here, then build the caches with
    ``decode_workers=workers`` in a child interpreter. Returns ``{"node": label, "error": message or
    None, "settings": n}``."""
    import json
    import subprocess
    import tempfile

    import ray

    import corpora

    label = _node_label(ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id())
    missing = sorted({c["data_dir"] for c in configs if not os.path.isdir(c["data_dir"])})
    if missing:
        return {"node": label, "error": f"{label} has no dataset at {', '.join(missing)} (every node needs the data "
                                         "at the same absolute path, or on shared storage)", "settings": 0}
    root = str(Path(corpora.__file__).resolve().parent.parent)  # this node's copy of the project
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        given, result = Path(tmp, "configs.json"), Path(tmp, "result.json")
        given.write_text(json.dumps([{**c, "decode_workers": workers} for c in configs], default=str))
        done = subprocess.run([sys.executable, "-c", _PREPARE, str(given), str(result)], cwd=root, env=env)
        if done.returncode != 0 or not result.exists():
            return {"node": label, "error": f"{label}: preparing the data failed (exit status {done.returncode}; "
                                             "its output is above)", "settings": 0}
        outcome = json.loads(result.read_text())
    if outcome["error"]:
        return {"node": label, "error": f"{label}: {outcome['error']}", "settings": 0}
    return {"node": label, "error": None, "settings": outcome["settings"]}


def prepare_on_nodes(configs: list[dict], resources: dict) -> tuple[list[str], list[str]]:
    """Run :func:`_prepare_here` on every node of :func:`trial_nodes`, one task per node pinned to it
    (``NodeAffinitySchedulingStrategy(soft=False)``) asking for all of its CPUs, with that many
    decoding workers. Configs of corpora not read from disk (synthetic data) need no task.
    Returns ``(one line per node that is ready, one line per node that is not)``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from corpora import get_corpus

    needed, seen = [], set()
    for config in configs:  # corpora read from disk; one config per distinct data setting is enough
        corpus = get_corpus(config["dataset_name"])
        if not corpus.reads_disk or not config.get("data_dir"):
            continue
        key = (config["dataset_name"], config.get("data_dir"), *(str(config.get(k)) for k in corpus.cache_keys or ()))
        if key not in seen:
            seen.add(key)
            needed.append(config)
    if not needed:
        return [], []
    nodes = trial_nodes(resources)
    if not nodes:
        return [], [f"no alive node of the cluster fits one trial ({resources})"]
    task = ray.remote(_prepare_here)
    refs = {}
    print(f"checking the data and building the decoded-audio cache on {len(nodes)} node(s)", flush=True)
    for node in nodes:
        cpus = node["Resources"].get("CPU", 0)
        strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        refs[_node_label(node["NodeManagerAddress"], node["NodeID"])] = task.options(
            num_cpus=cpus, scheduling_strategy=strategy, max_retries=0).remote(needed, max(1, int(cpus)))
    ready, errors = [], []
    for label, ref in refs.items():
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            errors.append(f"{label}: preparing the data failed ({first[:300]})")
            continue
        if result["error"]:
            errors.append(result["error"])
        else:
            cache = f", decoded-audio cache ready ({result['settings']} setting(s))" if result["settings"] else ""
            ready.append(f"{result['node']}: data found{cache}")
    return ready, errors
