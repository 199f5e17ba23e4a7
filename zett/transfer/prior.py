"""A hypernet's new-row prior: one logit constant for the rows the base vocabulary lacks.

A transfer copies the rows of tokens the base model also has (*shared* rows) and predicts
the others (*new* rows). How much probability the new rows take together depends on how many
there are, and a hypernet trained with a sampled softmax over vocabularies of many sizes
gets that mass right only on average: measured on eight BPE tokenizers trained on the
corpus (results/new_row_prior_fit.md), the bits per byte of the step-4480 SmolLM2 hypernet
fall most when every new row's logit is moved by a constant `c` that falls as the number of
new rows grows (+0.1 to +0.2 at 8–10k new rows, -1.3 to -1.6 at 100–117k). This module
holds that correction:

    shift(n_new) = a + b · ln(n_new)      (n_new clipped to the fitted range)

`a`, `b` are a least-squares fit of the best constant per fitting tokenizer against its
new-row count (`experiments/new_row_offset.py --fit`). A Llama head has no bias to put a
constant in, so the shift is exported along `direction`: the mean of the base model's final
(normed) hidden states, scaled so that its dot product with them averages 1; adding
`c · direction` to a row adds ~`c` to its logit. For a tied base this moves the row's input
embedding too (measured: it keeps almost all of the gain, results/new_row_offset.md `tied
shift`); for an untied base only the output row moves; a base with an output bias (BERT's
MLM head) gets the constant in that bias, exactly.

The prior lives in `new_row_prior.json` beside the hypernet's weights; a hypernet without the
file transfers as before, and `zett transfer --no-new-row-prior` ignores it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zett.atomic import atomic_write_text
from zett.errors import ZettError

FILE = "new_row_prior.json"


@dataclass(frozen=True)
class NewRowPrior:
    a: float
    b: float
    n_min: int  # the fitted range of new-row counts: outside it the shift is held constant
    n_max: int
    direction: np.ndarray  # [D] float32

    def shift(self, n_new: int) -> float:
        """The logit constant for a transfer with `n_new` new rows (0 when there are none)."""
        if n_new <= 0:
            return 0.0
        n = min(max(n_new, self.n_min), self.n_max)
        return self.a + self.b * math.log(n)

    def apply(
        self,
        new: np.ndarray,
        inp: np.ndarray,
        out: np.ndarray | None,
        bias: np.ndarray | None = None,
        n_new: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(input, output, bias) with the shift for `n_new` new rows (default `new.sum()`)
        added to the logits of the rows `new` (bool [V]) marks: into `bias` when there is
        one, else along `direction` in `out` (untied) or in the one tied matrix `inp`. The
        arrays passed in are not changed."""
        c = self.shift(int(new.sum()) if n_new is None else n_new)
        if c == 0.0:
            return inp, out, bias
        if bias is not None:
            bias = bias.copy()
            bias[new] += c
        elif out is not None:
            out = out.copy()
            out[new] += c * self.direction
        else:
            inp = inp.copy()
            inp[new] += c * self.direction
        return inp, out, bias


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(a, b) of the least-squares line c = a + b · ln(n) through (n_new, best c) points;
    one point (or one distinct n) gives the constant b = 0."""
    if not points:
        raise ZettError("new-row prior: no (n_new, best offset) points to fit")
    x = np.log(np.array([n for n, _ in points], np.float64))
    y = np.array([c for _, c in points], np.float64)
    if np.ptp(x) == 0:
        return float(y.mean()), 0.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def best_offset(offsets: list[float], bpb: list[float]) -> float:
    """The offset of least bits per byte on a grid, refined by the parabola through the grid
    minimum and its two neighbours (the grid minimum itself at the grid's ends)."""
    i = int(np.argmin(bpb))
    if i == 0 or i == len(bpb) - 1:
        return float(offsets[i])
    (x0, x1, x2), (y0, y1, y2) = offsets[i - 1 : i + 2], bpb[i - 1 : i + 2]
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    pa = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    pb = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denom
    if pa <= 0:
        return float(offsets[i])
    return float(min(max(-pb / (2 * pa), x0), x2))


def save(directory: Path, prior: NewRowPrior, provenance: dict) -> Path:
    """Write `prior` (and how it was fitted) to `directory`/new_row_prior.json, atomically."""
    path = Path(directory) / FILE
    body = {
        "rule": "shift = a + b * ln(clip(n_new, n_min, n_max)), along direction",
        "a": prior.a,
        "b": prior.b,
        "n_min": prior.n_min,
        "n_max": prior.n_max,
        "direction": [round(float(v), 7) for v in prior.direction],
        "fit": provenance,
    }
    atomic_write_text(path, json.dumps(body, indent=1) + "\n")
    return path


def load(directory: str | Path, d_model: int | None = None) -> NewRowPrior | None:
    """The prior in `directory`/new_row_prior.json, None without the file. A file that does
    not parse, lacks a key or has a direction of the wrong width is a ZettError naming it."""
    path = Path(directory) / FILE
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text())
        prior = NewRowPrior(
            a=float(body["a"]),
            b=float(body["b"]),
            n_min=int(body["n_min"]),
            n_max=int(body["n_max"]),
            direction=np.asarray(body["direction"], np.float32),
        )
    except (OSError, ValueError, TypeError, KeyError) as e:
        key = f"key {e}" if isinstance(e, KeyError) else str(e)
        raise ZettError(
            f"{path}: not a new-row prior ({key}); refit it with experiments/new_row_offset.py "
            "--fit, delete it, or transfer with --no-new-row-prior"
        ) from e
    bad_width = d_model is not None and prior.direction.shape != (d_model,)
    if prior.direction.ndim != 1 or bad_width or not 0 < prior.n_min <= prior.n_max:
        raise ZettError(
            f"{path}: direction of shape {prior.direction.shape} for width {d_model}, or "
            f"n_min {prior.n_min} / n_max {prior.n_max} out of order; refit it for this base"
        )
    return prior
