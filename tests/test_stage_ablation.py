"""experiments/stage_ablation.py's own logic: the cost record read from a run's export and
the equal-time table (the training and zero-shot parts are zett train and zero_shot.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

stage_ablation = pytest.importorskip("stage_ablation")


def test_cost_record_reads_the_export(tmp_path):
    from zett.config import TrainConfig

    (tmp_path / "hypernet").mkdir()
    meta = {"step": 1259, "lm_tokens": 60064, "train_wall_s": 723.1, "dims": {}}
    (tmp_path / "hypernet" / "hypernet.json").write_text(json.dumps(meta))
    tc = TrainConfig(steps=1270, compose_steps=1200, max_minutes=12)
    rec = stage_ablation.cost_record("compose_lm", tmp_path, tc)
    assert rec["steps"] == 1259 and rec["compose_steps"] == 1200
    assert rec["lm_tokens"] == 60064 and rec["train_wall_s"] == 723.1
    assert rec["config"] == "configs/stage_compose_lm.yaml" and rec["schedule_steps"] == 1270
    tc = TrainConfig(steps=2400, compose_steps=2400)  # stopped inside the compose stage
    assert stage_ablation.cost_record("compose_only", tmp_path, tc)["compose_steps"] == 1259


def test_table_has_every_variant_fvt_and_the_ratio_to_the_original(tmp_path):
    results = tmp_path / "stage_ablation"
    results.mkdir()
    lines = ["target,method,lang,bpb,tokens_per_byte,seconds"]
    lines.append("(own),original,mean,1.0,0.3,1")
    for target, fvt, lm in [("llama2", 2.0, 1.5), ("qwen3", 2.4, 1.9)]:
        lines += [f"{target},fvt,mean,{fvt},0.3,1", f"{target},lm_only,mean,{lm},0.3,1"]
        lines.append(f"{target},lm_only,en,9.9,0.3,1")  # per-language rows are not tabulated
    (results / "zero_shot.csv").write_text("\n".join(lines) + "\n")
    rec = {"train_wall_s": 720.0, "steps": 122, "compose_steps": 0, "lm_tokens": 124928}
    (results / "lm_only.json").write_text(json.dumps(rec))
    table = stage_ablation.tabulate(["lm_only"], results)
    rows = {line.split(" |")[0].strip("| "): line for line in table.splitlines()}
    assert "| 12.0 | 0 | 122 | 124,928 | 1.500 | 1.900 | 1.70× |" in rows["lm_only (LM steps only)"]
    assert "| 2.000 | 2.400 | 2.20× |" in rows["fvt"]
    assert (results.with_suffix(".md")).read_text().strip() == table
    assert "lm_only,qwen3,1.900000" in results.with_suffix(".csv").read_text()
    assert results.with_suffix(".png").is_file()
