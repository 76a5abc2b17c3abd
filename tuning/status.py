"""How a trial ended, from its last report: the one rule the runner's summary and the figures share.

A trial's last report (Tune's ``last_result``, one row of ``ResultGrid.get_dataframe`` or of
``figures.read.load_experiment``) says:

* **ended**: Tune marked it ``done`` (it ran to its end, or a scheduler stopped it);
* **finished**: it ended and was tested: ``test_loss`` holds a number (the trial reports ``test_loss``
  as NaN until its final test, ``training/trial.py``);
* **stopped early**: it ended untested: a scheduler (ASHA) stopped it. A rerun does not resume it.

Every function takes one row (a dict or a pandas Series: gives a ``bool``) or a ``DataFrame`` of rows
(gives a boolean ``Series`` on its index). A row without ``done`` has not ended; one without a
``test_loss`` at all (a table made by hand) counts as tested once it is done.

A frame that has been through :func:`mark` carries the answers as columns: ``done`` means finished and
``stopped_early`` says the rest; the functions read such a frame the same way as a raw one, so they can be
asked again about a marked frame (the figures do).
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping

import pandas as pd

TESTED = "test_loss"  # only a trial's own last report (after its final test) holds a number here
STOPPED = "stopped_early"  # the column :func:`mark` adds


def _flag(value) -> bool:
    """``done`` as a bool: ``None``/NaN (a trial that never reported) is False."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def _done(rows: pd.DataFrame) -> pd.Series:
    if "done" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["done"].map(_flag).astype(bool)


def _untested(rows: pd.DataFrame) -> pd.Series:
    if TESTED not in rows:
        return pd.Series(False, index=rows.index)
    return ~rows[TESTED].map(_is_number).astype(bool)


def stopped_early(rows: Mapping | pd.DataFrame):
    """Which trials a scheduler stopped: Tune marked their last report ``done`` although they never reached
    their final test (no number in ``test_loss``); a marked frame's ``stopped_early`` column counts too."""
    if isinstance(rows, pd.DataFrame):
        marked = rows[STOPPED].map(_flag).astype(bool) if STOPPED in rows else pd.Series(False, index=rows.index)
        return marked | (_done(rows) & _untested(rows))
    if _flag(rows.get(STOPPED)):
        return True
    return _flag(rows.get("done")) and TESTED in rows and not _is_number(rows.get(TESTED))


def finished(rows: Mapping | pd.DataFrame):
    """Which trials finished: ended (``done``) and not stopped early (they were tested)."""
    if isinstance(rows, pd.DataFrame):
        return _done(rows) & ~stopped_early(rows)
    return _flag(rows.get("done")) and not stopped_early(rows)


def ended(rows: Mapping | pd.DataFrame):
    """Which trials ran to their end: finished, or stopped early by the scheduler (their whole cost is paid)."""
    if isinstance(rows, pd.DataFrame):
        return finished(rows) | stopped_early(rows)
    return finished(rows) or stopped_early(rows)


def mark(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with the answers as columns: ``stopped_early`` (:func:`stopped_early`) and ``done``
    replaced by :func:`finished`. Marking a marked frame changes nothing."""
    return df.assign(**{STOPPED: stopped_early(df), "done": finished(df)})
