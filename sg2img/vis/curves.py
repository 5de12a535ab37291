"""Loss curves: a run's ``stats.jsonl`` as a PNG (``plot_loss_curves``).

matplotlib is imported inside the function, so importing this module does not pay for it.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from .pil import short_label

MAX_STATS_BYTES = 64 * 2**20
"""``plot_loss_curves`` reads at most the last this many bytes of ``stats.jsonl``."""
_MAX_CURVES = 24


def _finite(v: Any) -> float | None:
    """``v`` as a finite float, or None (not a number, a bool, NaN, inf or too large)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def plot_loss_curves(stats_path: str | os.PathLike, out_path: str | os.PathLike, *,
                     max_bytes: int = MAX_STATS_BYTES) -> Path | None:
    """Plot every ``G/`` and ``D/`` term of a ``stats.jsonl`` against the step into a PNG.

    Two panels, D terms and G terms, on a symlog axis; points are sorted by step (a resumed
    run appends steps it had already logged). Unusable input is skipped rather than fatal, so
    a run's file cut mid-line by a kill still plots: lines that are not JSON objects, rows
    without a numeric ``step``, values that are not finite numbers. Only the last
    ``max_bytes`` of the file are read, and at most 24 terms per panel are drawn (in name
    order). Drawn with matplotlib's Agg canvas, without pyplot, so the caller's matplotlib
    backend is left alone; the PNG is written to a temporary file, then renamed.

    Args:
        stats_path: the ``stats.jsonl`` of a run (one JSON object per line).
        out_path: the PNG to write (replaced if it exists).
        max_bytes: read at most the file's last ``max_bytes`` bytes.

    Returns:
        ``out_path``, or None when ``stats_path`` does not exist or holds no loss term
        (nothing is written then).

    Raises:
        ValueError: ``stats_path`` exists but is not a regular file (a FIFO would block).
    """
    stats_path, out_path = Path(stats_path), Path(out_path)
    try:
        st = stats_path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{stats_path} is not a regular file")
    with stats_path.open("rb") as f:
        start = max(0, st.st_size - max_bytes)
        f.seek(start)
        data = f.read(max_bytes)
    lines = data.decode("utf-8", "replace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line is cut
    curves: dict[str, list[tuple[float, float]]] = {}
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        step = _finite(row.get("step")) if isinstance(row, dict) else None
        if step is None:
            continue
        for k, v in row.items():
            val = _finite(v)
            if isinstance(k, str) and k[:2] in ("D/", "G/") and val is not None:
                curves.setdefault(k, []).append((step, val))
    if not curves:
        return None

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, group in zip(axes, ("D", "G"), strict=True):
        for k in sorted(c for c in curves if c.startswith(group + "/"))[:_MAX_CURVES]:
            pts = sorted(curves[k], key=lambda p: p[0])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=short_label(k[2:]))
        ax.set_title(f"{group} loss terms (unweighted)")
        ax.set_xlabel("step")
        ax.set_yscale("symlog", linthresh=1e-2)
        if ax.lines:
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    fig.savefig(tmp, dpi=90, format="png")
    os.replace(tmp, out_path)
    return out_path
