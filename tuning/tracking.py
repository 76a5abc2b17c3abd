"""Experiment tracking in MLflow (``main.py --mlflow [URI]``), through Ray Tune's own ``MLflowLoggerCallback``.

Each trial is one MLflow run in the MLflow experiment named as the Tune experiment (``<name>`` or
``<name>/<part>``): its config as parameters (flattened, as text), every numeric value of every epoch's
report as a metric at step ``training_iteration`` (the last one carries the ``test_*`` metrics; the
text ones, ``code_version``, ``node_ip``, ..., are left out by Ray, and so is the config, which Ray would
log again as metrics ``config/<key>``), and the tags ``code_version``
(:func:`training.provenance.code_version`), ``trial_name`` and ``trial_id``. The callback runs in the
driver, so a local store (a file or SQLite path on the driver) serves a cluster run too.

Where (:func:`resolve_uri`): ``--mlflow`` alone is :data:`DEFAULT_URI`, a SQLite file in ``mlruns/`` of
the project (whatever the working folder); a path or a ``file:`` URI is an MLflow file store, a
``sqlite:///`` URI a SQLite store (local ones made absolute); ``http(s)://host:port`` an MLflow server;
``databricks`` and the database URIs MLflow takes go to MLflow unchanged. MLflow 3.17 refuses its file
store unless ``MLFLOW_ALLOW_FILE_STORE=true`` (it is in "maintenance mode"): :func:`tracking_callbacks`
sets that for this process when the store is one (``mlflow ui`` on such a store needs it too).

Resuming (:class:`ResumableMLflowLogger`): Ray's callback keeps its trial -> run map in memory only, so
a rerun that resumes the experiment would open a second run for every unfinished trial, and a trial
restarted from its checkpoint reports again the epochs since that checkpoint. Here a trial's run is
found again by its ``trial_id`` tag and continued (finished trials are not started again, so their
runs are left as they are), and an epoch (step) already logged for a trial is not logged twice: the
metric history of a resumed trial has one entry per epoch, as an uninterrupted one (the trials are
deterministic: what is re-run equals what was logged). ``--fresh`` starts new trials, hence new runs
in the same MLflow experiment beside the old ones.
"""
from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

from ray.air.integrations.mlflow import MLflowLoggerCallback

from training.provenance import code_version

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URI = f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"
TRIAL_ID_TAG = "trial_id"
# the database URIs of MLflow's SQLAlchemy store (a driver may follow: postgresql+psycopg2://...)
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
REMOTE = ("http", "https", "databricks", "databricks-uc", "uc")


def _scheme(uri: str) -> str:
    if uri in REMOTE:  # MLflow's "databricks" (a profile of ~/.databrickscfg) has no colon
        return uri
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", uri)
    scheme = match.group(1).lower() if match else ""
    return "" if len(scheme) == 1 else scheme  # C:\... is a path


def resolve_uri(uri: str) -> str:
    """``uri`` as MLflow gets it: a local path or ``file:`` URI -> ``file:///abs/path``, ``sqlite:///rel.db``
    -> ``sqlite:////abs/rel.db`` (relative to the working folder, as MLflow would read them); others as
    given."""
    scheme = _scheme(uri)
    if scheme == "":
        return Path(os.path.abspath(os.path.expanduser(uri))).as_uri()
    if scheme == "file":
        return Path(os.path.abspath(urllib.parse.urlsplit(uri).path or ".")).as_uri()
    if scheme == "sqlite" and uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        return f"sqlite:///{os.path.abspath(uri[len('sqlite:///'):])}"
    return uri


def _local_target(uri: str) -> tuple[Path, bool] | None:
    """``(path, is_folder)`` of a local store of the resolved ``uri``; ``None`` for a remote one."""
    scheme = _scheme(uri)
    if scheme == "file":
        return Path(urllib.parse.urlsplit(uri).path), True
    if scheme == "sqlite" and uri.startswith("sqlite:////"):
        return Path(uri[len("sqlite:///"):]), False
    return None


def uri_problems(uri: str | None) -> list[str]:
    """What is wrong with ``--mlflow=uri`` (one line each), checked before Ray starts; nothing is created.
    A local store must be (or be creatable in) a folder this user can write; a server URI needs a host."""
    if uri is None:
        return []
    flag = f"--mlflow={uri}"
    scheme = _scheme(uri)
    if scheme in ("http", "https") and not urllib.parse.urlsplit(uri).hostname:
        return [f"{flag}: a server URI needs a host, e.g. http://127.0.0.1:5000"]
    if scheme.split("+")[0] in DATABASES and not uri.startswith(f"{scheme}://"):
        return [f"{flag}: a database URI reads {scheme}://..., e.g. sqlite:///mlruns/mlflow.db"]
    if scheme not in ("", "file", *REMOTE) and scheme.split("+")[0] not in DATABASES:
        return [f"{flag}: unknown scheme {scheme!r}; use a folder or file:/path (file store), sqlite:///path.db, "
                "http(s)://host:port (an MLflow server) or a database URI"]
    target = _local_target(resolve_uri(uri))
    if target is None:
        return []
    path, is_folder = target
    if path.exists() and path.is_dir() != is_folder:
        return [f"{flag}: {path} is a {'file' if is_folder else 'folder'}; "
                f"{'a file store is a folder' if is_folder else 'a SQLite store is a file'}"]
    existing = next(p for p in (path, *path.parents) if p.exists())
    if existing != path and not existing.is_dir():
        return [f"{flag}: {existing} is a file, not a folder; choose another location"]
    if not os.access(existing if existing.is_dir() else existing.parent, os.W_OK | os.X_OK):
        return [f"{flag}: cannot write in {existing} (permission or a read-only filesystem)"]
    return []


class ResumableMLflowLogger(MLflowLoggerCallback):
    """Ray's ``MLflowLoggerCallback`` that continues a trial's run after a resume instead of opening another,
    and logs each step of a trial once (see the module's docstring)."""

    def setup(self, *args, **kwargs):
        super().setup(*args, **kwargs)
        self._last_step = {}  # trial -> the last step logged to its run

    def log_trial_start(self, trial):
        if trial not in self._trial_runs:
            client = self.mlflow_util._get_client()
            found = client.search_runs([self.mlflow_util.experiment_id],
                                       filter_string=f"tags.{TRIAL_ID_TAG} = '{trial.trial_id}'", max_results=1)
            if found:  # a resumed experiment: continue the run of this trial
                run = found[0]
                client.update_run(run.info.run_id, status="RUNNING")
                self._last_step[trial] = int(run.data.metrics.get("training_iteration", 0))
            else:
                run = self.mlflow_util.start_run(
                    run_name=str(trial), tags={**self.tags, "trial_name": str(trial), TRIAL_ID_TAG: trial.trial_id})
            self._trial_runs[trial] = run.info.run_id
        super().log_trial_start(trial)  # logs the config as parameters (the same values again: allowed)

    def log_trial_result(self, iteration, trial, result):
        step = result.get("timesteps_total") or result["training_iteration"]
        if step <= self._last_step.get(trial, 0):  # an epoch re-run after a restore: logged already
            return
        # the config is the run's parameters already: Ray would log its numbers again as metrics config/<key>
        super().log_trial_result(iteration, trial, {k: v for k, v in result.items() if k != "config"})
        self._last_step[trial] = step


def tracking_callbacks(mlflow_uri: str | None, experiment_name: str) -> list:
    """The Tune callbacks for ``--mlflow=mlflow_uri`` (none when ``None``) logging the Tune experiment
    ``experiment_name`` (``<name>`` or ``<name>/<part>``) to the MLflow experiment of that name."""
    if mlflow_uri is None:
        return []
    uri = resolve_uri(mlflow_uri)
    target = _local_target(uri)
    if target is not None:
        if target[1]:  # MLflow 3.17 refuses its file store without this
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        (target[0] if target[1] else target[0].parent).mkdir(parents=True, exist_ok=True)
    return [ResumableMLflowLogger(tracking_uri=uri, experiment_name=experiment_name,
                                  tags={"code_version": code_version()})]
