"""PNGs of a trial's front-end: what it makes of a clip (initial beside trained), and what it learned.

The initial front-end is the trial's model rebuilt as it started (:func:`inference.checkpoint.build_initial`).
What a front-end learned is drawn from :func:`inference.export.learned_values` of the initial and the trained
front-end, one panel per array both give: a window over time in ms (DMEL's Gaussian, Ada-STFT's window), a
per-filter value over the filter index (LEAF's and SincNet's centre frequencies and bandwidths, PCEN's
parameters), a matrix as two images (a trainable mel filterbank, SincNet's filters).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from inference.checkpoint import FinishedTrial  # noqa: E402
from training.segments import eval_plan, read_segments  # noqa: E402

MAX_PANELS = 8  # learned arrays drawn per front-end figure, in PANEL_ORDER first
ROW_SLOTS = 4  # panels per row of that figure (a matrix takes two)
PANEL_ORDER = ("window", "center_hz", "fwhm_hz", "band_hz", "low_hz", "high_hz", "filterbank", "lambda_samples")
SUMMARY = ("lambda_samples", "lambda_ms", "window_ms", "n_fft", "win_length")  # scalars in the figure's title


@torch.no_grad()
def frontend_image(model: torch.nn.Module, clip: np.ndarray, length: int, hop: int | None = None) -> np.ndarray:
    """``(channels, freq, frames)``: ``model.frontend`` on each ``length``-sample segment of ``clip`` (starting
    every ``hop`` samples, default ``length``), the segments' frames side by side (one channel but for a stack
    of Ada-STFT windows)."""
    x = torch.from_numpy(clip)[None]
    index, offsets = eval_plan(1, len(clip), length, hop)
    device = next(model.parameters()).device
    out = model.frontend(read_segments(x, index, offsets, length, device)).float().cpu()
    if out.dim() == 3:  # (segments, freq, frames)
        out = out.unsqueeze(1)
    return torch.cat(list(out), dim=-1).numpy()  # (channels, freq, segments * frames)


def render_clip(path: Path, title: str, clip: np.ndarray, trial: FinishedTrial, initial, trained) -> Path:
    """``path``: the initial (left) and the trained (right) front-end's output for ``clip``, one row per channel,
    time in seconds (segment boundaries dotted)."""
    before, after = (frontend_image(m, clip, trial.segment_length, trial.segment_hop) for m in (initial, trained))
    seconds = trial.n_segments * trial.segment_length / trial.sample_rate  # the segments side by side
    rows = before.shape[0]
    fig, axes = plt.subplots(rows, 2, figsize=(10, 2.6 * rows + 0.6), squeeze=False)
    for r in range(rows):
        for ax, image, name in zip(axes[r], (before[r], after[r]), ("initial", "trained")):
            shown = ax.imshow(image, origin="lower", aspect="auto", cmap="magma",
                              extent=(0, seconds, 0, image.shape[0]))
            for k in range(1, trial.n_segments):
                ax.axvline(k * seconds / trial.n_segments, color="white", ls=":", lw=0.8)
            ax.set_title(f"{name} front-end" + (f", channel {r}" if rows > 1 else ""), fontsize=9)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("band")
            fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def render_learned(path: Path, trial: FinishedTrial, initial: dict, trained: dict) -> Path:
    """``path``: the arrays of ``initial`` and ``trained`` (:func:`inference.export.learned_values`) before and
    after training, at most ``MAX_PANELS`` of them (``PANEL_ORDER`` first; ``*_cycles`` duplicates of a
    ``*_hz`` array, ``initial_*`` arrays and arrays of three or more axes are left out); the title gives
    the ``SUMMARY`` scalars before -> after."""
    names = [k for k, v in trained.items() if isinstance(v, np.ndarray) and v.size > 1 and 1 <= v.ndim <= 2
             and isinstance(initial.get(k), np.ndarray) and not k.startswith("initial_")
             and not (k.endswith("_cycles") and k[:-len("_cycles")] + "_hz" in trained)]
    names = sorted(names, key=lambda k: PANEL_ORDER.index(k) if k in PANEL_ORDER else len(PANEL_ORDER))[:MAX_PANELS]
    widths = [2 if _as_image(k, trained[k]) else 1 for k in names]
    rows = _pack(widths)  # rows of at most ROW_SLOTS slots; a matrix takes two side by side
    columns = max([sum(widths[i] for i in row) for row in rows] or [1])
    fig = plt.figure(figsize=(3.6 * columns, 3.0 * max(len(rows), 1) + 0.6))
    grid = fig.add_gridspec(max(len(rows), 1), columns)
    for r, row in enumerate(rows):
        c = 0
        for i in row:
            axes = [fig.add_subplot(grid[r, c + k]) for k in range(widths[i])]
            _panel(axes, names[i], initial[names[i]], trained[names[i]], trial.sample_rate)
            c += widths[i]
    if not names:
        ax = fig.add_subplot(grid[0, 0])
        ax.text(0.5, 0.5, "nothing learned to draw", ha="center", va="center")
        ax.set_axis_off()
    summary = [f"{k} {_fmt(initial[k])} -> {_fmt(trained[k])}" for k in SUMMARY
               if _is_number(trained.get(k)) and _is_number(initial.get(k))]
    fig.suptitle(f"{trial.config['frontend']} ({trial.trial_id}): initial (grey, dashed) vs trained"
                 + ("\n" + "; ".join(summary) if summary else ""), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _pack(widths: list[int]) -> list[list[int]]:
    """Panel indices in rows of at most ``ROW_SLOTS`` slots, in order."""
    rows: list[list[int]] = []
    used = ROW_SLOTS
    for i, width in enumerate(widths):
        if used + width > ROW_SLOTS:
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += width
    return rows


def _as_image(name: str, value: np.ndarray) -> bool:
    """A matrix drawn as two images (a stack of windows is drawn as lines)."""
    return value.ndim == 2 and name != "window" and min(value.shape) > 1


def _panel(axes: list, name: str, before: np.ndarray, after: np.ndarray, sample_rate: int) -> None:
    if len(axes) == 2:  # a matrix: before | after, one colour scale
        low, high = min(before.min(), after.min()), max(before.max(), after.max())
        for ax, image, when in zip(axes, (before, after), ("initial", "trained")):
            ax.imshow(image, origin="lower", aspect="auto", cmap="viridis", vmin=low, vmax=high)
            ax.set_title(f"{name} ({when})", fontsize=9)
        return
    ax = axes[0]
    for value, style in ((before, dict(color="gray", ls="--")), (after, dict(color="tab:blue"))):
        for row in np.atleast_2d(value):
            if name == "window":  # time in ms around the window's centre
                x = 1000.0 * (np.arange(len(row)) - len(row) / 2) / sample_rate
            else:
                x = np.arange(len(row))
            ax.plot(x, row, lw=1, **style)
    ax.set_xlabel("time from the centre (ms)" if name == "window" else "index (filter / band / bin)")
    ax.set_title(name, fontsize=9)
    ax.grid(alpha=0.3)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
