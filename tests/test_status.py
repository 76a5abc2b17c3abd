"""The one rule "finished, not stopped early" (tuning/status.py) on a dict row, a Series and a DataFrame, raw
or marked; main.py's summary and the figures count by it; and tuning/ never imports figures/."""
import ast
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from figures.provenance import missing_trials, source_line
from figures.read import ended, finished
from tuning import status
from tuning.runner import summarize

ROOT = Path(__file__).resolve().parent.parent

# Tune's last reports: tested, stopped by ASHA (done, test_loss still the NaN placeholder), running, never
# reported, done in a table made by hand (no test_loss at all)
ROWS = [{"done": True, "test_loss": 0.3}, {"done": True, "test_loss": math.nan}, {"done": False, "test_loss": math.nan},
        {}, {"done": True}]
FINISHED, STOPPED, ENDED = [True, False, False, False, True], [False, True, False, False, False], \
    [True, True, False, False, True]


def test_the_rule_on_dict_rows():
    assert [status.finished(r) for r in ROWS] == FINISHED
    assert [status.stopped_early(r) for r in ROWS] == STOPPED
    assert [status.ended(r) for r in ROWS] == ENDED
    assert status.stopped_early({"done": True, "test_loss": None})  # None like NaN: not tested
    assert not status.finished({"done": None, "test_loss": 0.1})  # done unknown: not ended


def test_the_rule_on_frames_raw_marked_and_series():
    raw = pd.DataFrame(ROWS[:4])  # the hand-made row apart: a frame has a test_loss column for every row or none
    assert list(status.finished(raw)) == FINISHED[:4] and list(status.stopped_early(raw)) == STOPPED[:4]
    assert list(status.ended(raw)) == ENDED[:4]
    assert [status.finished(row) for _, row in raw.iterrows()] == FINISHED[:4]  # a Series row like a dict
    marked = status.mark(raw)
    assert list(marked["done"]) == FINISHED[:4] and list(marked["stopped_early"]) == STOPPED[:4]
    assert "stopped_early" not in raw and list(raw["done"].fillna(False)) == [True, True, False, False]  # a copy
    for frame in (marked, status.mark(marked)):  # the same answers asked again, and marking twice
        assert list(status.finished(frame)) == FINISHED[:4] and list(status.stopped_early(frame)) == STOPPED[:4]
        assert list(status.ended(frame)) == ENDED[:4]
    assert list(status.finished(pd.DataFrame({"done": [True, False]}))) == [True, False]  # no test_loss column
    assert not status.finished(pd.DataFrame({"x": [1, 2]})).any()  # no done column: nothing ended
    assert finished(marked).index.tolist() == [0] and ended(marked).index.tolist() == [0, 1]


def test_summary_and_figures_count_alike():
    """main.py's summary (Tune's frame of last reports) and the figures' source line (the marked frame of
    figures.read) give the same counts for the same trials."""
    df = pd.DataFrame(ROWS[:4]).assign(**{"config/seed": [0, 1, 2, 3]})
    grid = type("Grid", (), {"get_dataframe": lambda self: df, "__len__": lambda self: 4,
                             "__iter__": lambda self: iter([SimpleNamespace(error=None, path=f"/x/t{k}")
                                                            for k in range(4)])})()
    done, stopped, unfinished, errors = summarize(grid)
    assert (done, stopped, unfinished, errors) == (1, 1, 2, [])
    marked = status.mark(df)
    marked.attrs["trials"] = pd.DataFrame({"trial_dir": [f"t{k}" for k in range(4)], "status": "TERMINATED",
                                           "done": marked["done"], "stopped_early": marked["stopped_early"]})
    assert "1 of 4 trials finished (1 stopped early by the scheduler)" in source_line(marked)
    assert missing_trials(marked) == ["t2 (TERMINATED)", "t3 (TERMINATED)"]  # the stopped trial ended


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "tuning").glob("*.py")), ids=lambda p: p.name)
def test_tuning_never_imports_figures(path):
    """tuning/ runs experiments and may not depend on what draws them: figures/ reads tuning/, not back."""
    assert not {m for m in _imports(path) if m == "figures" or m.startswith("figures.")}, path.name
