"""Plots: real PNG files of the right size are written atomically; empty input is refused."""

from __future__ import annotations

import struct

import pytest

from zett.errors import ZettError
from zett.eval.plots import grouped_bar_chart, line_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_grouped_bar_chart_writes_png(tmp_path):
    values = {
        "original": {"smollm2": 0.86},
        "fvt": {"llama3": 1.31, "qwen3": 1.22, "gpt35turbo": float("nan")},
        "hypernet": {"llama3": 0.95, "qwen3": 0.93, "gpt35turbo": 0.97},
    }
    out = grouped_bar_chart(
        values, tmp_path / "figs" / "bpb.png", title="bpb", reference={"*": 0.86}
    )
    data = out.read_bytes()
    width, height = _png_size(data)
    assert width > 300 and height > 200
    assert len(data) > 5_000  # bars, labels and text, not a blank canvas
    assert [p.name for p in out.parent.iterdir()] == ["bpb.png"]  # no temp file left behind


def test_line_plot_writes_png_and_more_curves_draw_more(tmp_path):
    one = line_plot({"hypernet": [(0, 1.4), (1000, 1.0), (500, 1.1)]}, tmp_path / "one.png")
    two = line_plot(
        {"hypernet": [(0, 1.4), (500, 1.1), (1000, 1.0)], "fvt": [(0, 1.5), (1000, 1.2)]},
        tmp_path / "two.png",
        xlabel="tokens",
        logx=False,
        hlines={"original": 0.86},
    )
    for path in (one, two):
        _png_size(path.read_bytes())
    assert one.read_bytes() != two.read_bytes()


def test_empty_input_is_a_user_error(tmp_path):
    with pytest.raises(ZettError, match="nothing to plot"):
        grouped_bar_chart({}, tmp_path / "x.png")
    with pytest.raises(ZettError, match="nothing to plot"):
        line_plot({"a": []}, tmp_path / "y.png")
    assert not list(tmp_path.iterdir())
