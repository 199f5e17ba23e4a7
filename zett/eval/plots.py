"""PNG figures for experiments/: grouped bars of a score per method × tokenizer, and curves.

Matplotlib runs on the Agg backend (no display needed); each figure is rendered into memory
and written with `atomic_write_bytes`, so a killed script never leaves half a PNG. The
figure is closed after writing, so long experiment scripts do not accumulate memory.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from zett.atomic import atomic_write_bytes
from zett.errors import ZettError

DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def grouped_bar_chart(
    values: Mapping[str, Mapping[str, float]],
    path: str | Path,
    title: str = "",
    ylabel: str = "bits per byte",
    reference: Mapping[str, float] | None = None,
) -> Path:
    """Bars of `values[method][tokenizer]`: one group per tokenizer, one colour per method.

    A method without a figure for some tokenizer leaves a gap there (missing or NaN).
    `reference` (e.g. the original model with its own tokenizer, per tokenizer group or
    under one key `"*"` for all groups) draws a dashed horizontal line to beat.
    """
    if not values or not any(values.values()):
        raise ZettError(f"{path}: nothing to plot; give at least one method with one figure")
    plt = _pyplot()
    methods = list(values)
    groups: list[str] = []
    for per_tok in values.values():
        groups.extend(t for t in per_tok if t not in groups)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 + 0.9 * len(groups) * len(methods) ** 0.5), 3.6))
    for m, method in enumerate(methods):
        xs, ys = [], []
        for g, group in enumerate(groups):
            y = values[method].get(group)
            if y is not None and not math.isnan(y):
                xs.append(g - 0.4 + width * (m + 0.5))
                ys.append(y)
        bars = ax.bar(xs, ys, width=width, label=method)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    if reference:
        for g, group in enumerate(groups):
            y = reference.get(group, reference.get("*"))
            if y is not None:
                label = "reference" if g == 0 else None
                ax.hlines(y, g - 0.45, g + 0.45, colors="k", linestyles="dashed", label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, Path(path))


def line_plot(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    path: str | Path,
    xlabel: str = "step",
    ylabel: str = "bits per byte",
    title: str = "",
    logx: bool = False,
    hlines: Mapping[str, float] | None = None,
) -> Path:
    """One line per `curves[name]` of `(x, y)` points (e.g. bpb vs step or vs tokens seen).

    Points are sorted by x. `hlines` adds labelled dotted horizontal references (e.g. the
    original model's bpb, or the zero-shot starting point).
    """
    if not curves or not any(len(points) for points in curves.values()):
        raise ZettError(f"{path}: nothing to plot; give at least one curve with one point")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for name, points in curves.items():
        if not points:
            continue
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker="o" if len(xs) < 20 else None, markersize=3, label=name)
    for name, y in (hlines or {}).items():
        ax.axhline(y, linestyle=":", color="gray")
        ax.annotate(name, xy=(0.01, y), xycoords=("axes fraction", "data"), fontsize=7)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, Path(path))
