"""Encoder transfer: all-MiniLM-L6-v2 moved to other tokenizers, scored by embedding agreement.

    python experiments/minilm_transfer.py                        # baselines, ~10-20 min on CPU
    python experiments/minilm_transfer.py --hypernet hypernets/minilm   # + the hypernet
    python experiments/minilm_transfer.py --targets llama2 local-wordpiece-16k --methods fvt
    python experiments/minilm_transfer.py --smoke                # tiny BERT, seconds (tests)

MiniLM has no MLM head, so bits per byte does not apply; a transferred encoder is good when
its sentence embedding of a text (new tokenizer + new embeddings) agrees with the original
model's (`zett.eval.embedding_agreement`): mean cosine between the two, and same-sentence
retrieval (top-1, MRR) of the new embedding among all original ones; `halves_*` retrieves a
sentence's second half from its first (a harder, topical match; `reference_halves_*` is the
original model's own score on it, the ceiling).

Sentences: the corpus test split's English documents, split at sentence ends, 40-300
characters and ≥ 6 words, de-duplicated, the first `--n-sentences` (default 300).
Targets: llama2, qwen3, gpt35turbo when present (../shared or `zett prepare tokenizers`), plus a WordPiece (BERT-style,
lower-cased) and a Unigram (Metaspace) tokenizer of 16k trained here on 3 MB of corpus
English train text. Methods: every baseline (fvt, lexical, focus, mean, random; FOCUS's
auxiliary embeddings are learned on 1 MB of English train text tokenized with the target),
and `hypernet` when `--hypernet DIR` holds a MiniLM hypernet.

Writes results/minilm_transfer.csv (one row per target × method), results/minilm_transfer.md
and results/minilm_transfer.png (mean cosine per method, grouped by target). Each cell is
cached under results/minilm_transfer/cells/ (`--force` recomputes).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))  # cells.py

from cells import cell_file, file_digest, hypernet_inputs, read_cell, write_cell  # noqa: E402

SHARED = ["llama2", "qwen3", "gpt35turbo"]
LOCAL = {"local-wordpiece-16k": "wordpiece", "local-unigram-16k": "unigram"}
METHODS = ["fvt", "lexical", "focus", "mean", "random"]
SCORES = ["mean_cosine", "top1", "mrr", "halves_top1", "halves_mrr", "reference_halves_top1"]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def split_sentences(
    texts: list[str], n: int, min_chars: int = 40, max_chars: int = 300
) -> list[str]:
    """The first `n` distinct sentences of `texts` with 40-300 characters and ≥ 6 words
    (line breaks inside a sentence become spaces)."""
    seen: set[str] = set()
    out: list[str] = []
    for text in texts:
        for para in re.split(r"\n\s*\n", text):
            for sent in _SENTENCE_END.split(" ".join(para.split())):
                ok = min_chars <= len(sent) <= max_chars and len(sent.split()) >= 6
                if ok and sent not in seen:
                    seen.add(sent)
                    out.append(sent)
                    if len(out) == n:
                        return out
    return out


def local_target(name: str, workdir: Path, texts: list[str], vocab: int = 16000) -> Path:
    """Train (once) a WordPiece or Unigram tokenizer on `texts`; returns its directory."""
    from zett.tokenizers.convert import cached_tokenizer

    out = workdir / "tokenizers" / name
    return cached_tokenizer(out, LOCAL[name], lambda: texts, vocab, byte_level=False)


def cell_inputs(base: str, target: str, method: str, n_sentences: int, options: dict) -> dict:
    """Everything a cell's scores depend on (see experiments/cells.py)."""
    from zett import assets

    inputs = {
        "method": method, "base": base, "n_sentences": n_sentences,
        "target": file_digest(assets.find_tokenizer(target)), "seed": options.get("seed"),
    }  # fmt: skip
    if method == "hypernet":
        inputs.update(hypernet_inputs(options["hypernet"]))
    return inputs


def run_target(base: str, target: str, label: str, methods, sentences, args, options) -> list[dict]:
    """Score every method for one target (one load + one decomposition shared by them)."""
    from zett.eval.embedding_agreement import embedding_agreement_models, load_encoder
    from zett.transfer.baselines import METHODS as REGISTRY
    from zett.transfer.baselines import build_inputs
    from zett.transfer.export import export_transferred
    from zett.transfer.load import load_pair

    cells = Path(args.results) / "minilm_transfer" / "cells"
    keys = {m: cell_inputs(base, target, m, len(sentences), options) for m in methods}
    path = {m: cell_file(cells, label, m, keys[m]) for m in methods}
    rows = {m: read_cell(path[m], keys[m], "minilm", args.force) for m in methods}
    todo = [m for m in methods if rows[m] is None]
    if todo:
        base_dir, loaded, base_tok, target_path, target_tok = load_pair(base, target)
        inputs = build_inputs(loaded, base_tok, target_tok, options)
        orig = load_encoder(base_dir)
        for method in todo:
            print(f"[minilm] {label} × {method}", flush=True)
            t0 = time.perf_counter()
            new = REGISTRY[method](inputs)
            out = Path(args.workdir) / f"{label}-{method}"
            export_transferred(base_dir, loaded, target_path, new, out, True, method=method)
            model, tok = load_encoder(out)
            if tok.pad_token is None:  # e.g. llama2 has none; padded positions are masked anyway
                tok.pad_token = tok.eos_token or tok.unk_token or tok.convert_ids_to_tokens(0)
            scores = embedding_agreement_models(orig, (model, tok), sentences)
            n_tokens = sum(len(tok(s, add_special_tokens=False)["input_ids"]) for s in sentences)
            row = {"target": label, "method": method, **{k: scores.get(k) for k in SCORES},
                   "tokens_per_byte": n_tokens / sum(len(s.encode()) for s in sentences),
                   "n_sentences": scores["n_sentences"],
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            write_cell(path[method], row, keys[method])
            rows[method] = row
            shutil.rmtree(out, ignore_errors=True)
    return [rows[m] for m in methods]


def table(rows: list[dict]) -> str:
    head = ["target", "method", "mean cos", "top-1", "MRR", "halves top-1", "tokens/byte"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["target"], r["method"], f"{r['mean_cosine']:.3f}", f"{r['top1']:.3f}",
                 f"{r['mrr']:.3f}", f"{r['halves_top1']:.3f}", f"{r['tokens_per_byte']:.3f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    ref = rows[0].get("reference_halves_top1")
    if ref is not None:
        lines.append(f"\noriginal MiniLM on the halves task: top-1 {ref:.3f} "
                     f"({rows[0]['n_sentences']} sentences)")  # fmt: skip
    return "\n".join(lines)


def write_outputs(rows: list[dict], out: Path, name: str) -> str:
    from zett.atomic import atomic_write_text
    from zett.compare import write_csv
    from zett.eval.plots import grouped_bar_chart

    write_csv(rows, out / f"{name}.csv")
    md = table(rows)
    atomic_write_text(out / f"{name}.md", md + "\n")
    values: dict[str, dict[str, float]] = {}
    for r in rows:
        values.setdefault(r["method"], {})[r["target"]] = r["mean_cosine"]
    grouped_bar_chart(values, out / f"{name}.png", ylabel="mean cosine to original",
                      title="all-MiniLM-L6-v2 transfer: sentence-embedding agreement",
                      reference={"*": 1.0})  # fmt: skip
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="minilm")
    p.add_argument("--hypernet", default=None, help="a MiniLM hypernet dir (adds `hypernet`)")
    p.add_argument("--targets", nargs="*", help="default: shared ones present + local ones")
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--n-sentences", type=int, default=300)
    p.add_argument("--workdir", default="outputs/minilm_transfer")
    p.add_argument("--results", default="results")
    p.add_argument("--force", action="store_true", help="recompute cached cells")
    p.add_argument("--smoke", action="store_true", help="tiny random BERT, seconds")
    args = p.parse_args(argv)
    if args.smoke:
        return smoke(args)

    from zett import assets
    from zett.data.corpus import texts_for

    t0 = time.perf_counter()
    sentences = split_sentences(texts_for("test", "en", 2_000_000), args.n_sentences)
    methods = list(args.methods)
    if args.hypernet and "hypernet" not in methods:
        methods.append("hypernet")
    options = {"seed": 0, "texts": texts_for("train", "en", 1_000_000)}
    if args.hypernet:
        options["hypernet"] = args.hypernet
    targets = args.targets or [n for n in SHARED if assets.has_tokenizer(n)] + list(LOCAL)
    train_en = None
    rows: list[dict] = []
    for label in targets:
        target = label
        if label in LOCAL:
            train_en = train_en or texts_for("train", "en", 3_000_000)
            target = str(local_target(label, Path(args.workdir), train_en))
        rows += run_target(args.base, target, label, methods, sentences, args, options)
    print(write_outputs(rows, Path(args.results), "minilm_transfer"))
    print(f"[minilm] done in {time.perf_counter() - t0:.0f} s")
    return 0


def smoke(args) -> int:
    """A tiny random BERT with its own WordPiece, transferred to a tiny BPE (what tests run)."""
    import tempfile

    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from zett.testing import make_tokenizer, tiny_texts
    from zett.tokenizers.convert import save_tokenizer, train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        en = tiny_texts()["en"]
        base = tmp / "bert"
        tok_file = save_tokenizer(train_tokenizer("wordpiece", en, 400), base / "tokenizer.json")
        tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_file), cls_token="[CLS]",
                                      sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
                                      mask_token="[MASK]")  # fmt: skip
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64, pad_token_id=0)  # fmt: skip
        BertModel(cfg).save_pretrained(str(base))
        tok.save_pretrained(str(base))
        target = tmp / "target"
        make_tokenizer(target, vocab_size=400)
        args.workdir, args.results = str(tmp / "work"), args.results
        args.force = True
        sentences = split_sentences(en, 40)
        options = {"seed": 0, "texts": en}
        rows = run_target(str(base), str(target), "tiny-bpe", ["fvt", "lexical", "random"],
                          sentences, args, options)  # fmt: skip
        print(write_outputs(rows, Path(args.results), "minilm_transfer_smoke"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
