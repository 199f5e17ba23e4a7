"""Are a transfer's new rows over- or under-confident? Bits per byte when a constant `c` is
added to the logit of every row the base vocabulary lacks.

Run:      .venv/bin/python experiments/new_row_offset.py [--targets llama3 local-code-16k]
          [--hypernet hypernets/smollm2] [--methods hypernet] [--offsets -1 -0.5 0 0.5]
Needs:    `zett prepare smollm2`, `zett prepare corpus`, the target tokenizers (a local 16k
          one is trained on first use, as experiments/zero_shot.py trains it).
Writes:   results/new_row_offset.json and .md.

A target token whose bytes are also a SmolLM2 token (a *shared* row, experiments/token_bits
shared_rows) has a row the frozen body was trained with; every other row is new, predicted
from its pieces. If the new rows' logits are calibrated, no constant shift of them lowers
the test bits; if the bits fall for some `c < 0`, the new rows take too much probability
mass (too large a vocabulary of new tokens competing for each position), for `c > 0` too
little. A Hugging Face Llama head has no bias to export such a constant in, but SmolLM2's
final hidden states share one direction (their mean is ~3/4 of their norm): moving every new
row by `s · v`, with `v` along that mean and scaled so h · v averages 1 over the valid split's
texts, adds ~`s` to those rows' logits in an ordinary tied checkpoint (it moves their input
rows too). `--shifts` scores that exportable version (`tied shift` columns). Same texts,
bytes, chunking and context starter as the zero-shot table (`c = 0` is its cell); one forward
pass per chunk serves every `c`. A few minutes per target and method on the 2-core CPU.

Targets besides the zero-shot table's: `bpe-<N>k` / `spm-<N>k`, byte-level / SentencePiece
BPEs of N·1024 tokens trained on the train split (tokenizers no table reports), and
`sampled-<N>k`, a tokenizer drawn as training draws them. With `--fit` the hypernet is
scored without its new-row prior, one is fitted to the targets' best offsets on the split
scored (`--fit-on` label prefixes choose which targets), checked leave-one-out and written
into the hypernet (zett.transfer.prior); README's new-row prior section has the command
(~12 min). `--rows-from` redoes only the fit from such a run's JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "results"


def offset_bits(model, tok, texts: list[str], new, offsets: list[float]) -> list[float]:
    """Total bits of `texts` under `model` (its tokenizer `tok`) for each offset in
    `offsets` added to the logits of the rows where the bool tensor `new` is true."""
    import torch.nn.functional as F

    from experiments.token_bits import chunk_logits
    from zett.eval.bpb import DEFAULT_CHUNK_TOKENS, context_start_id

    start = context_start_id(tok, model.config)
    totals = [0.0] * len(offsets)
    shift = new.float()
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        for _, logits, y in chunk_logits(model, ids, start, DEFAULT_CHUNK_TOKENS):
            for i, c in enumerate(offsets):
                nll = F.cross_entropy(logits + c * shift, y, reduction="sum")
                totals[i] += float(nll) / math.log(2)
    return totals


def mean_direction(model, tok, texts: list[str], max_tokens: int = 512):
    """[d] vector along the mean of `model`'s final hidden states over `texts` (each cut to
    `max_tokens`), scaled so that their dot product with it averages 1."""
    import torch

    states = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"][:max_tokens]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
        states.append(out.hidden_states[-1][0])
    h = torch.cat(states)
    unit = h.mean(0) / h.mean(0).norm()
    return unit / (h @ unit).mean()


SAMPLED_CONFIG = ROOT / "configs" / "smollm2_cpu_bigvocab2.yaml"
SAMPLED_STEP = 1_000_000  # draw steps far past any training run's


def sampled_target(label: str, workdir: Path) -> str:
    """The tokenizer directory of a `sampled-<N>k[-<i>]` label: the `i`-th (default 0)
    tokenizer of at most N·1024 pieces drawn from the train split exactly as training
    draws them (SAMPLED_CONFIG's sampler, languages and pre-tokenizers, the step
    SAMPLED_STEP + i's random stream). Written once under `workdir`/tokenizers."""
    import dataclasses

    from zett.config import load_config
    from zett.data.corpus import load_corpus
    from zett.data.pipeline import TextMixture, sample_step_tokenizer
    from zett.errors import ZettError

    size, _, index = label.removeprefix("sampled-").partition("-")
    if not size.endswith("k") or not size[:-1].isdigit() or not (index or "0").isdigit():
        raise ZettError(f"--targets {label}: write sampled-<N>k or sampled-<N>k-<i>")
    directory = workdir / "tokenizers" / label
    if not (directory / "tokenizer.json").is_file():
        data = load_config(SAMPLED_CONFIG).data
        n = int(size[:-1]) * 1024
        data = dataclasses.replace(data, vocab_size_min=n, vocab_size_max=n)
        mixture = TextMixture(load_corpus(data.corpus)["train"], data.langs)
        _, _, sampled = sample_step_tokenizer(mixture, data, SAMPLED_STEP + int(index or 0))
        directory.mkdir(parents=True, exist_ok=True)
        sampled.tokenizer.save(str(directory / "tokenizer.json"))
    return str(directory)


TRAINED_LANGS = ["en", "de", "ru", "python", "c", "javascript"]


def trained_target(label: str, workdir: Path) -> str:
    """The tokenizer directory of a `bpe-<N>k` (byte-level, GPT-2 style) or `spm-<N>k`
    (SentencePiece style, byte fallback) label: a BPE of N·1024 tokens trained once on
    2 MB of train-split text of each of TRAINED_LANGS, under `workdir`/tokenizers."""
    from zett.data.corpus import texts_for
    from zett.errors import ZettError
    from zett.tokenizers.convert import cached_tokenizer

    kind, _, size = label.partition("-")
    if kind not in ("bpe", "spm") or not size.endswith("k") or not size[:-1].isdigit():
        raise ZettError(f"--targets {label}: write bpe-<N>k or spm-<N>k")

    def texts() -> list[str]:
        return [t for lang in TRAINED_LANGS for t in texts_for("train", lang, 2_000_000)]

    directory = workdir / "tokenizers" / label
    n = int(size[:-1]) * 1024
    return str(cached_tokenizer(directory, "bpe", texts, n, byte_level=kind == "bpe"))


def new_rows(model_dir: Path, tok, n_rows: int):
    """Bool tensor [n_rows]: the tokenizer's rows that are not shared with SmolLM2's."""
    from experiments.token_bits import shared_rows

    new = ~shared_rows(model_dir, n_rows)
    new[len(tok) :] = False  # padding rows past the vocab are no token
    return new


def fit_rows(rows: list[dict], fit_on: list[str] | None = None) -> list[dict]:
    """The hypernet mean rows a prior is fitted to: targets starting with a `fit_on` prefix
    (all without), once per distinct result (a `bpe-256k` the corpus cannot fill is the
    `bpe-128k` tokenizer again)."""
    means = [r for r in rows if r["lang"] == "mean" and r["method"] == "hypernet"]
    if fit_on:
        means = [r for r in means if r["target"].startswith(tuple(fit_on))]
    first: dict[tuple, dict] = {}
    for r in means:
        first.setdefault((r["n_new"], tuple(r["bpb"])), r)
    return list(first.values())


def fit_points(rows: list[dict]) -> list[tuple[int, float]]:
    """(new-row count, best offset) of each of `fit_rows`' rows."""
    from zett.transfer.prior import best_offset

    return [(r["n_new"], best_offset(r["offsets"], r["bpb"])) for r in rows]


def bpb_at(row: dict, c: float) -> float:
    """`row`'s bits per byte at offset `c`, read off a quartic through its grid (smooth in
    c; the grid's own points are reproduced to ~1e-3)."""
    import numpy as np

    deg = min(4, len(row["offsets"]) - 1)
    return float(np.polyval(np.polyfit(row["offsets"], row["bpb"], deg), c))


def leave_one_out(rows: list[dict]) -> list[str]:
    """Markdown: for each fitted row, the shift a fit without it predicts and what that
    shift does to its bits per byte (the prior on a tokenizer it never saw)."""
    import numpy as np

    from zett.transfer import prior

    lines = [
        "| held out | new rows | best c | predicted c | bpb at c = 0 | bpb at predicted c |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows):
        others = fit_points(rows[:i] + rows[i + 1 :])
        a, b = prior.fit(others)
        counts = [n for n, _ in others]
        no_direction = np.zeros(0, np.float32)  # shift() alone needs none
        c = prior.NewRowPrior(a, b, min(counts), max(counts), no_direction).shift(r["n_new"])
        (_, best), zero = fit_points([r])[0], bpb_at(r, 0.0)
        lines.append(
            f"| {r['target']} | {r['n_new'] / 1000:.1f}k | {best:+.2f} | {c:+.2f} | "
            f"{zero:.3f} | {bpb_at(r, c):.3f} ({bpb_at(r, c) - zero:+.3f}) |"
        )
    return lines


def plot_best_offsets(rows: list[dict], fit: tuple[float, float] | None, path: Path) -> Path:
    """Best offset vs new rows (log scale), one curve per target kind, with the fitted line."""
    from zett.eval.plots import line_plot

    kinds = {"bpe-": "byte-level BPE (trained here)", "spm-": "SentencePiece BPE (trained here)",
             "sampled-": "sampled as in training"}  # fmt: skip
    curves: dict[str, list[tuple[float, float]]] = {}
    fitted = fit_rows(rows)
    for r, (n, c) in zip(fitted, fit_points(fitted), strict=True):
        kind = next((v for k, v in kinds.items() if r["target"].startswith(k)), "real tokenizers")
        curves.setdefault(kind, []).append((float(n), c))
    if fit:
        xs = sorted(x for pts in curves.values() for x, _ in pts)
        curves["fit: a + b ln(new rows)"] = [(x, fit[0] + fit[1] * math.log(x)) for x in xs]
    return line_plot(curves, path, xlabel="new rows (target tokens SmolLM2 lacks)",
                     ylabel="best logit offset c", logx=True,
                     title="Best new-row logit offset (valid split)")  # fmt: skip


def write_prior(
    rows: list[dict], hypernet: Path, texts: list[str], command: str, fit_on=None
) -> tuple[str, tuple[float, float]]:
    """Fit the new-row prior (zett.transfer.prior) to `fit_rows(rows, fit_on)` and write it
    into `hypernet`: its direction from the base model's own final hidden states on `texts`.
    Returns (markdown: the fit and its leave-one-out check, (a, b))."""
    from zett.eval.bpb import load_causal_lm
    from zett.transfer import prior

    fitted_rows = fit_rows(rows, fit_on)
    points = fit_points(fitted_rows)
    a, b = prior.fit(points)
    model, tok = load_causal_lm("smollm2", "cpu")
    direction = mean_direction(model, tok, texts).numpy()
    counts = [n for n, _ in points]
    fitted = prior.NewRowPrior(a, b, min(counts), max(counts), direction)
    targets = [r["target"] for r in fitted_rows]
    provenance = {
        "command": command,
        "targets": targets,
        "points": [[n, round(c, 4)] for n, c in points],
    }
    path = prior.save(hypernet, fitted, provenance)
    summary = (
        f"Fit on {', '.join(targets)} (`best c` of their mean rows): **c = {a:.3f} {b:+.3f} · "
        f"ln(new rows)**, held constant outside {min(counts)}–{max(counts)} new rows; written "
        f"to `{path.relative_to(ROOT)}` (zett.transfer.prior). Leave one out: each fitted "
        "tokenizer under the prior fitted without it (bits per byte at a shift off the grid "
        "read off a quartic through the grid):"
    )
    print(summary)
    return "\n".join([summary, "", *leave_one_out(fitted_rows)]), (a, b)


def to_markdown(
    rows: list[dict],
    offsets: list[float],
    command: str,
    shifts: list[float] | None = None,
    split: str = "test",
) -> str:
    shifts = shifts or []
    lines = [
        f"{split.capitalize()}-split bits per byte of SmolLM2 transferred zero-shot, with a "
        "constant `c` added to the logit of every row SmolLM2's vocabulary lacks (`c = 0`: "
        "the transfer as exported, on the test split the zero-shot table's cell; the best `c` "
        "per row in bold). `new rows` = share of the target vocabulary that is not a SmolLM2 "
        "token. `tied shift s` = every new row (input and "
        "output: one tied matrix) moved by `s` along the final hidden states' mean direction, "
        "scaled so it adds `s` to their logits on average: the constant in an exportable "
        "form.",
        "",
        f"Command: `{command}`",
        "",
        "| target | method | lang | new rows | "
        + " | ".join([f"c = {c:g}" for c in offsets] + [f"tied shift {v:g}" for v in shifts])
        + " | best c |",
        "|" + "---|" * (5 + len(offsets) + len(shifts)),
    ]
    from zett.transfer.prior import best_offset

    for r in rows:
        best = min(r["bpb"])
        refined = best_offset(offsets, r["bpb"])
        cells = " | ".join(
            [f"**{b:.3f}**" if b == best else f"{b:.3f}" for b in r["bpb"]]
            + [f"{b:.3f}" for b in r.get("shift_bpb", [])]
        )
        lines.append(
            f"| {r['target']} | {r['method']} | {r['lang']} | {100 * r['new_share']:.0f}%"
            + (f" ({r['n_new'] / 1000:.1f}k)" if "n_new" in r else "")
            + " "
            f"| {cells} | {refined:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    from experiments.zero_shot import LANGS, MAX_BYTES, held_out_texts, target_for

    def target_dir(label: str, workdir: Path) -> str:
        if label.startswith("sampled-"):
            return sampled_target(label, workdir)
        if label.startswith(("bpe-", "spm-")):
            return trained_target(label, workdir)
        return target_for(label, workdir)

    from zett.atomic import atomic_write_text
    from zett.compare import export_method
    from zett.eval.bpb import load_causal_lm

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", nargs="*", default=["llama3", "local-code-16k"])
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--methods", nargs="*", default=["hypernet"])
    p.add_argument("--offsets", nargs="*", type=float, default=[-1.0, -0.5, -0.25, 0.0, 0.5])
    p.add_argument(
        "--shifts", nargs="*", type=float, default=[-1.0], help="tied row shifts to score"
    )
    p.add_argument("--langs", nargs="*", default=LANGS)
    p.add_argument(
        "--split", default="test", choices=["test", "valid"], help="corpus split to score"
    )
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    p.add_argument("--workdir", default="outputs/zero_shot", help="local tokenizers, exports")
    p.add_argument("--out", default=str(OUT / "new_row_offset"), help="output path stem")
    p.add_argument(
        "--fit",
        action="store_true",
        help="score the hypernet without its new-row prior, fit one to the targets' best "
        "offsets and write it into --hypernet (new_row_prior.json)",
    )
    p.add_argument(
        "--fit-on",
        nargs="*",
        help="with --fit: only the targets whose labels start with one of these (default all)",
    )
    p.add_argument(
        "--rows-from",
        help="with --fit: take the scores from this JSON of an earlier run with the same "
        "targets and offsets instead of scoring again (the fit and the .md are redone)",
    )
    args = p.parse_args(argv)
    given = list(argv or sys.argv[1:])
    if args.rows_from:  # the command that scores them: this one without --rows-from
        i = given.index("--rows-from")
        given = given[:i] + given[i + 2 :]
    command = "python experiments/new_row_offset.py " + " ".join(given)
    workdir = Path(args.workdir)
    texts = held_out_texts(args.langs, args.max_bytes, args.split)
    valid = []  # the tied shifts' direction: two valid texts per language, read only for them
    if args.shifts or args.fit:
        valid = [t for ts in held_out_texts(args.langs, 3000, "valid").values() for t in ts[:2]]
    rows = []
    if args.rows_from:
        if not args.fit:
            p.error("--rows-from needs --fit")
        rows = json.loads(Path(args.rows_from).read_text())
    for target in [] if args.rows_from else args.targets:
        for method in args.methods:
            out_dir = workdir / f"offset-{target}-{method}"
            model_dir = export_method(
                method,
                "smollm2",
                target_dir(target, workdir),
                out_dir,
                hypernet=args.hypernet,
                options={"new_row_prior": not args.fit} if method == "hypernet" else None,
            )
            model, tok = load_causal_lm(model_dir, "cpu")
            new = new_rows(model_dir, tok, model.config.vocab_size)
            share = float(new.sum()) / len(tok)
            rows_in = model.get_input_embeddings().weight
            if args.shifts:  # only the tied shifts need the direction
                direction = mean_direction(model, tok, valid)
                unshifted = rows_in[new].detach().clone()
            none = torch.zeros_like(new)
            per_lang = []
            for lang in args.langs:
                bits = offset_bits(model, tok, texts[lang], new, args.offsets)
                for shift in args.shifts:
                    with torch.no_grad():
                        rows_in[new] = unshifted + shift * direction
                    bits += offset_bits(model, tok, texts[lang], none, [0.0])
                    with torch.no_grad():
                        rows_in[new] = unshifted  # restored exactly, not by subtracting
                size = sum(len(t.encode("utf-8")) for t in texts[lang])
                per_lang.append([b / size for b in bits])
                print(f"{target} {method} {lang}: " + " ".join(f"{x:.3f}" for x in per_lang[-1]))
            means = [sum(col) / len(col) for col in zip(*per_lang, strict=True)]
            for lang, bpb in [*zip(args.langs, per_lang, strict=True), ("mean", means)]:
                rows.append(
                    {
                        "target": target,
                        "method": method,
                        "lang": lang,
                        "new_share": share,
                        "n_new": int(new.sum()),
                        "offsets": args.offsets,
                        "bpb": bpb[: len(args.offsets)],
                        "shifts": args.shifts,
                        "shift_bpb": bpb[len(args.offsets) :],
                    }
                )
            shutil.rmtree(model_dir, ignore_errors=True)
    out = Path(args.out)
    markdown = to_markdown(rows, args.offsets, command.strip(), args.shifts, args.split)
    if args.fit:
        hypernet = Path(args.hypernet).resolve()
        summary, line = write_prior(rows, hypernet, valid, command.strip(), args.fit_on)
        markdown += f"\n{summary}\n"
        plot_best_offsets(rows, line, out.with_suffix(".png"))
    atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown)
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
