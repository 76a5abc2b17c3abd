"""Tune's experiment state, saved so that a ``kill -9`` at any moment leaves one a rerun can restore.

Ray 2.60's Tune keeps its experiment state (``experiment_state-*.json``, the searcher's and callbacks'
state files) in a staging folder on the driver and uploads that folder to the storage in a background
thread. Two things went wrong after ``kill -9`` (both seen in
``tests/test_tune.py::test_driver_killed_then_rerun``):

1. **A stale state.** Tune saves at most every 10 s by default. In between, a trial can register two
   newer checkpoints, so ``num_to_keep=2`` deletes the one the stored state names, and the rerun fails
   that trial ("does not exist on storage anymore"). Fix: ``TUNE_GLOBAL_CHECKPOINT_S=0`` (unless the
   user exported it), a save after every step of Tune's loop, so the state's latest checkpoint is always
   one of the two kept.
2. **A torn state.** Tune rewrites the staging files in place while its previous upload may still be
   reading them. The upload then stores the first part of the new file: the rerun could not parse it
   ("Failed to restore the run state"), and Tune started the experiment over. Fix:
   :func:`save_state_safely` makes each save wait until the previous upload has finished. A local
   upload takes milliseconds; the wait costs nothing when none is running.

The upload itself is made whole on local storage by :class:`tuning.storage.AtomicLocalHandler`; an
object store shows an upload only once complete.
"""
from __future__ import annotations

import functools
import logging
import os

from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

logger = logging.getLogger(__name__)


def save_state_safely() -> None:
    """Set Tune's save period to every step and make each save wait for the previous upload; call
    before ``Tuner.fit`` (idempotent)."""
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    sync_up = _ExperimentCheckpointManager.sync_up_experiment_state
    if not getattr(sync_up, "waits_for_upload", False):
        _ExperimentCheckpointManager.sync_up_experiment_state = after_previous_upload(sync_up)


def after_previous_upload(sync_up):
    """``sync_up`` (Tune's ``sync_up_experiment_state(self, save_fn, force, wait)``, which calls
    ``save_fn`` to rewrite the staging files, then starts an upload) preceded by a wait for the upload
    still running, if any. A failed upload is logged here, as Tune logs it, and the save goes on."""

    @functools.wraps(sync_up)
    def wrapped(self, save_fn, force: bool = False, wait: bool = False):
        try:
            self._storage.syncer.wait()
        except Exception as err:  # noqa: BLE001 - the next upload retries; the run goes on
            logger.warning("uploading the experiment state failed: %s", err)
        return sync_up(self, save_fn, force=force, wait=wait)

    wrapped.waits_for_upload = True
    return wrapped
