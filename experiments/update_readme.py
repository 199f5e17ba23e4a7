"""Regenerate README's "Results" section from results/*.md (tables) and results/*.png (plots).

    python experiments/update_readme.py

Each entry below names the table file an experiment script wrote, the command that produced
it, and the plot to show. Missing files are listed as "not run yet" rather than left stale.
The section sits between the markers `<!-- results:start -->` and `<!-- results:end -->`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"

SECTIONS = [
    {
        "title": "The default hypernet (hypernets/smollm2) zero-shot, every unseen target",
        "table": "results/zero_shot_default/zero_shot.md",
        "plot": "results/zero_shot_default/zero_shot.png",
        "command": "python experiments/zero_shot.py --hypernet hypernets/smollm2 --label "
        "prior-5100 --without-prior raw-5100=hypernets/smollm2 "
        "raw-4730=hypernets/smollm2_big4730 big2-4480=hypernets/smollm2_big4480 --also "
        "prior-4730=hypernets/smollm2_big4730 prior-4480=hypernets/smollm2_big4480 "
        "big-4180=hypernets/smollm2_big4180 "
        "meta3-3920=hypernets/smollm2_meta3920 "
        "meta2-3719=hypernets/smollm2_meta3719 meta-3470=hypernets/smollm2_meta3470 "
        "cool-3248=hypernets/smollm2_cool3248 "
        "pretok-2938=hypernets/smollm2_pretok2938 cont-2681=hypernets/smollm2_cont2681 "
        "cont-2522=hypernets/smollm2_cont2522 --methods hypernet fvt "
        "--results results/zero_shot_default",
        "what": "the protocol of the table below (corpus test split, 4,000 bytes per language, "
        "fp32), for the default since 2026-12-07 night: `prior-5100` = as `zett transfer` "
        "exports it, with its new-row prior (new_row_prior.json, zett/transfer/prior.py), "
        "`raw-5100` = the same without the prior: compose stage → 400 LM "
        "steps with the zett sampler → 2,020 LM steps of ~4,000 tokens, from step 2311 with "
        "`hypernet.correct_fragments` on, from step 2682 with two pre-tokenizers in the "
        "tokenizer sampler (`data.pretokenizers: [gpt2, punct_attach]`), from step 2990 to "
        "3248 a linear learning-rate cool-down and from step 3249 a third sampler "
        "pre-tokenizer, `metaspace`, re-warmed and cooled down to 3470, again to 3719 and, "
        "from a warm start with unbiased sampled-softmax offsets (`data.negative_strata`), to "
        "3920 and, with sampled vocabularies of 16k–256k drawn log-uniformly, to 4180 and "
        "4480 and, with 1.5x the softmax rows and `data.min_negatives`, to 4730 and 5100 "
        "(configs/smollm2_cpu_long.yaml, configs/smollm2_cpu_continue.yaml, "
        "configs/smollm2_cpu_pretok.yaml, configs/smollm2_cpu_cooldown.yaml, "
        "configs/smollm2_cpu_metaspace.yaml, configs/smollm2_cpu_metaspace2.yaml, "
        "configs/smollm2_cpu_metaspace3.yaml, configs/smollm2_cpu_bigvocab.yaml, "
        "configs/smollm2_cpu_bigvocab2.yaml, configs/smollm2_cpu_bigvocab3.yaml, "
        "configs/smollm2_cpu_bigvocab4.yaml; 12.79M LM tokens in all; "
        "hypernets/smollm2/TRAINING.md); `prior-4730` / `raw-4730` = the same run at step "
        "4730 with / without its own new-row prior (11.39M tokens, the default of 2026-12-07 "
        "late); `prior-4480` / `big2-4480` = the "
        "same run at step 4480 with / without its own new-row prior (10.44M tokens, the "
        "default of 2026-12-07 night); `big-4180` = at step 4180 (9.29M "
        "tokens, the default of 2026-12-07 evening); `meta3-3920` = at step "
        "3920 (8.31M tokens, the default of 2026-12-07 afternoon); `meta2-3719` = at step "
        "3719 (7.52M tokens, the default of 2026-12-07 morning); `meta-3470` = at step "
        "3470 (6.55M tokens, the default of 2026-12-06 night); `cool-3248` = at step 3248 (5.68M "
        "tokens, the default of 2026-12-06 evening); `pretok-2938` = at step 2938 (4.48M, the "
        "default of 2026-12-06 morning); `cont-2681` = at step 2681, before the first sampler "
        "change (3.47M tokens); `cont-2522` = at step 2522 (2.85M tokens, the default of "
        "2026-12-04). From 2522 to 2681 with GPT-2 pre-tokenization only, llama2 and the "
        "local 16k tokenizers improved while Python under Llama-3, Qwen3 and cl100k got "
        "0.08–0.09 bpb worse: their tokens across GPT-2's pre-token boundaries (`):` + "
        "newline, `(self`) never occur in sampled tokenizers, and their rows moved 17–23× "
        "more than the rest (results/row_drift.md). With both pre-tokenizers, 257 more steps "
        "beat both earlier steps on all six means (Llama-3 2.037 → 1.904, Qwen3 2.009 → "
        "1.879, cl100k 2.035 → 1.911), 310 more with the cool-down beat step 2938 on all six "
        "again (Llama-3 1.904 → 1.877, cl100k 1.911 → 1.884), and 222 more with `metaspace` "
        "(which forms the pieces of tokenizers trained without a pre-tokenizer rule but "
        "spaces, as the local 16k ones are) beat step 3248 on all six: German-16k 2.614 → "
        "2.557, code-16k 2.725 → 2.673 (3–4× what earlier ~300-step stages gave them), "
        "Llama-3 1.877 → 1.867, Qwen3 1.855 → 1.846, cl100k 1.884 → 1.869, llama2 1.707 → "
        "1.703; per language only Python under the four real tokenizers is behind step 3248 "
        "(by 0.0005–0.004). 249 more steps of the same recipe, re-warmed and cooled down once "
        "more, beat step 3470 on all six means (Llama-3 1.867 → 1.854, Qwen3 1.846 → 1.830, "
        "cl100k 1.869 → 1.851, German-16k 2.557 → 2.540, code-16k 2.673 → 2.651, llama2 1.703 → "
        "1.700; Python under Llama-3, Qwen3 and cl100k −0.027 each) and are behind it on four "
        "of 24 language cells, by 0.001–0.005. 200 more steps with the offsets fixed (a warm "
        "start: fresh AdamW moments) beat step 3719 on all six means (Llama-3 1.854 → 1.838, "
        "Qwen3 1.830 → 1.818, cl100k 1.851 → 1.842, German-16k 2.540 → 2.532, code-16k 2.651 → "
        "2.639, llama2 1.700 → 1.696) and on every language cell (two equal). What the "
        "cool-downs add over the same steps at the cosine rate, and the fix over the same "
        "steps without it, was not measured separately (no control runs). 260 more steps "
        "(resumed, AdamW moments kept) whose sampled vocabularies reach 256k beat step 3920 "
        "on the four large targets (Llama-3 1.838 → 1.813, Qwen3 1.818 → 1.797, cl100k "
        "1.842 → 1.823; Python −0.05 under each) and code-16k (2.639 → 2.634) but are behind "
        "on llama2 (1.696 → 1.700; Russian +0.022) and German-16k (2.532 → 2.536), again "
        "with no control run. 300 more steps of that recipe (resumed, cooled down once "
        "more) beat step 4180 on all six means (Llama-3 1.813 → 1.805, Qwen3 1.797 → 1.788, "
        "cl100k 1.823 → 1.812, llama2 1.700 → 1.698, German-16k 2.536 → 2.530, code-16k "
        "2.634 → 2.628) and on 23 of 24 language cells (one equal). 250 more with 1.5x "
        "the softmax rows (`raw-4730`) beat step 4480 on all six means and 23 of 24 cells; "
        "370 more of that recipe (`prior-5100` vs `prior-4730`, each with its own prior) "
        "beat step 4730 on all six means (Llama-3 1.780 → 1.769, Qwen3 1.766 → 1.755, "
        "cl100k 1.796 → 1.788, llama2 1.692 → 1.690, German-16k 2.524 → 2.519, code-16k "
        "2.625 → 2.618) and on 20 of 24 cells (two equal; Russian under cl100k +0.012). "
        "A hypernet's 6 cells take ~3–6 min on the 2-core CPU.",
    },
    {
        "title": "Training curve of the default hypernet, every stage (held-out bpb vs LM tokens)",
        "table": "results/train_curve_default.md",
        "plot": "results/train_curve_default_tokens.png",
        "command": "python experiments/train_curve.py --run hypernets/smollm2 "
        "--out results/train_curve_default",
        "what": "in-loop evaluation (corpus valid split, 6,000 bytes per language, fp32 params) "
        "with the unseen llama2 tokenizer along the whole history of hypernets/smollm2 "
        "(its committed metrics.jsonl): step 0 is FVT, steps 1–1500 the compose stage (0 LM "
        "tokens), 1501–1900 the zett-sampler LM stage (~1k tokens per step), 1901–2310 the long "
        "LM stage (~4k tokens per step), 2311–2681 its continuation with "
        "`hypernet.correct_fragments` (configs/smollm2_cpu_continue.yaml), 2682–2938 with two "
        "pre-tokenizers in the sampler (configs/smollm2_cpu_pretok.yaml; llama2 changes little, "
        "the gain is on tokenizers whose pieces cross GPT-2's pre-token boundaries, table above), "
        "2939–3248 the same with a linear lr cool-down from step 2990 "
        "(configs/smollm2_cpu_cooldown.yaml), 3249–3470 with a third sampler pre-tokenizer "
        "and a second cool-down (configs/smollm2_cpu_metaspace.yaml), 3471–3719 the same "
        "re-warmed and cooled down a third time (configs/smollm2_cpu_metaspace2.yaml), "
        "3720–3920 a warm start with unbiased sampled-softmax offsets, cooled down a fourth "
        "time (configs/smollm2_cpu_metaspace3.yaml), 3921–4480 with sampled vocabularies of "
        "16k–256k (configs/smollm2_cpu_bigvocab.yaml, configs/smollm2_cpu_bigvocab2.yaml), "
        "4481–4730 with 1.5x the softmax rows and `data.min_negatives` "
        "(configs/smollm2_cpu_bigvocab3.yaml), 4731–5100 the same recipe resumed and cooled "
        "down once more (configs/smollm2_cpu_bigvocab4.yaml). Plots: vs LM tokens (above) and vs wall "
        "hours of the "
        "2-core CPU (results/train_curve_default_hours.png; the machine was shared with light "
        "work, so hours are an upper bound on CPU hours).",
    },
    {
        "title": "Are the step-3920 hypernet's new rows calibrated? (a constant added to their logits)",
        "table": "results/new_row_offset.md",
        "plot": None,
        "command": "python experiments/new_row_offset.py --hypernet hypernets/smollm2_meta3920 "
        "--offsets -1.5 -1 -0.5 -0.25 0 0.5 --shifts -1 -0.5",
        "what": "the zero-shot table's protocol (test split, 4,000 bytes per language) for the "
        "step-3920 hypernet (the default of 2026-12-07 afternoon) on Llama-3 (128k "
        "vocabulary) and the local code-16k tokenizer; the same for step 3719 in "
        "results/new_row_offset_meta3719.md. A negative best `c` means "
        "the new rows take too much probability mass. ~8 min per target on the 2-core CPU.",
    },
    {
        "title": "The new-row prior of `zett transfer`, fitted on tokenizers trained here",
        "table": "results/new_row_prior_fit.md",
        "plot": "results/new_row_prior_fit.png",
        "command": "python experiments/new_row_offset.py --hypernet hypernets/smollm2 --split "
        "valid --targets bpe-16k bpe-32k bpe-64k bpe-128k spm-16k spm-32k spm-64k spm-128k "
        "sampled-32k sampled-128k llama2 llama3 qwen3 gpt35turbo --offsets -2 -1.5 -1 -0.5 "
        "0 0.5 1 --shifts --fit --fit-on bpe- spm- llama2 llama3 qwen3 gpt35turbo --out "
        "results/new_row_prior_fit",
        "what": "valid split (4,000 bytes per language) of the step-5100 default without a "
        "prior; `bpe-`/`spm-` = byte-level / SentencePiece BPEs of N·1024 tokens trained on "
        "the train split, `sampled-` = drawn as training draws them (not fitted on: far "
        "from real tokenizers, 2.4–3.4 bpb), and the four real tokenizers; the fit and its "
        "leave-one-out check below the table; the step-4730 hypernet's fit in "
        "results/new_row_prior_fit_big4730.md, the step-4480 one's, the one quoted in the "
        "text, in results/new_row_prior_fit_big4480.md. ~12 min on the 2-core CPU.",
    },
    {
        "title": "Sampled-softmax offsets before `data.negative_strata` (data only)",
        "table": "results/negative_strata.md",
        "plot": None,
        "command": "python experiments/negative_strata.py",
        "what": "20 batches of configs/smollm2_cpu_metaspace3.yaml from step 3720 (2,048 rows, "
        "1,536 short slots of ≤ 3 pieces), each built twice with the same sampled tokenizer: "
        "which random negatives `short_first` kept, per length stratum. ~1 min.",
    },
    {
        "title": "Which stages pay off at equal CPU time (12 minutes each)",
        "table": "results/stage_ablation.md",
        "plot": "results/stage_ablation.png",
        "command": "python experiments/stage_ablation.py",
        "what": "four stage variants of configs/stage_*.yaml (the compose config's 2-layer hypernet and "
        "8 × 128-token, 1,024-row batch, zett sampler, one seed each), every one stopped by "
        "`train.max_minutes: 12` on the 2-core CPU with only light work (edits, lint) beside "
        "it, then scored with the zero-shot protocol above (test split, 4,000 bytes per language; 21 min for the "
        "24 hypernet cells). Compose → LM with the compose loss kept as an auxiliary term (the "
        "recipe of the shipped hypernet) is best on all six targets, by 0.003–0.04 bpb over "
        "compose → LM without it. LM-only is ahead of compose-only on llama2 (1.853 vs 1.947, "
        "where compose-only stays at FVT's 1.942) and local-de-16k, behind it on llama3, qwen3 "
        "and cl100k (by ~0.1); half the time in each stage gets most of both. All four are far "
        "from the long run at its step 2310 (llama2 1.726 after 5.4 wall hours) and from the ≤ 1.40× "
        "goal: 12 minutes say which start is better, not where a long run ends. The fifth "
        "row is not a stage but the A/B of `hypernet.correct_fragments` at the same budget "
        "(configs/stage_compose_lm_aux_fragments.yaml): with `copy_single`, a one-piece token "
        "keeps its base row, and under the local 16k tokenizers 74% of the Russian test tokens "
        "are lone UTF-8 bytes of a Cyrillic letter, rows SmolLM2 (which merges those bytes) "
        "barely trained; correcting them instead takes local-de-16k from 3.041 to 2.895 and "
        "local-code-16k from 3.152 to 2.997 (Russian alone: 4.140 → 3.459 and 4.030 → 3.369), and costs "
        "0.002–0.018 on the four real tokenizers, where the run also had 10% fewer LM steps "
        "(56 vs 62: the 12 minutes are wall time). A first run of it, with tests running "
        "beside it (51 LM steps), gave 2.978 / 3.080 on the local ones and 0.01–0.02 more on "
        "the real ones. One seed each.",
    },
    {
        "title": "Zero-shot transfer of SmolLM2-135M to unseen tokenizers",
        "table": "results/zero_shot.md",
        "plot": "results/zero_shot.png",
        "command": "python experiments/zero_shot.py --hypernet hypernets/smollm2_lm200 --also "
        "compose-only=hypernets/smollm2_compose_only "
        "compose+lm500=hypernets/smollm2_compose_lm500 "
        "compose+zett-lm400=hypernets/smollm2_compose_zett",
        "what": "bits per byte (lower is better) on the corpus test split, 4,000 bytes per "
        "language; `tokens/byte` is the sequence length per byte (lower = shorter). "
        "`original` is SmolLM2 with its own tokenizer. `hypernet` is the previous default "
        "(now hypernets/smollm2_lm200: 200 LM steps, 35 min); `compose-only` is 1,500 compose steps "
        "and no LM (configs/smollm2_cpu_compose.yaml stopped at the end of its compose stage, "
        "13 min wall), `compose+lm500` the same run 500 LM steps (0.51M tokens, 38 min) later "
        "; `compose+zett-lm400` is compose-only + 400 LM steps (0.41M tokens, 58 min on one core) "
        "with the paper's tokenizer sampler (`data.sampler: zett`, configs/smollm2_cpu_compose_zett.yaml).",
    },
    {
        "title": "Every real tokenizer family: overlap with SmolLM2, FVT vs the hypernet",
        "table": "results/tokenizer_families.md",
        "plot": None,
        "command": "python experiments/tokenizer_families.py --hypernet hypernets/smollm2",
        "what": "one row per real tokenizer of zett/tokenizers/sources.json (`zett prepare "
        "tokenizers`) plus MiniLM's WordPiece: its family, size, the share of its ids SmolLM2 "
        "has as the very same token, SmolLM2 pieces per token, and bits per byte (mean of en, "
        "de, python; 2,000 test bytes each, fp32) of SmolLM2-135M after FVT and after the "
        "step-5100 default hypernet with its new-row prior, as `zett transfer` exports it "
        "(rerun 2026-12-07; `--without-prior` writes results/tokenizer_families_noprior.md). "
        "Per language in results/tokenizer_families.csv. The default beats FVT on all 17, by "
        "0.17 (Llama-2 and the Mistral SentencePiece BPEs) to 0.67 (Llama-3) and 1.10 (toke). "
        "Against the previous default of this table (hypernets/smollm2_lm200, 200 LM steps) it "
        "is better on 15 of 17 (Llama-3 2.296 → 1.830, Qwen3 2.266 → 1.828, cl100k 2.275 → "
        "1.818, Llama-2 1.883 → 1.703) and **worse on the two whose tokens take the most "
        "SmolLM2 pieces**: toke (9.2 pieces per token: 3.198 → 3.437) and mon (16.8: 2.767 → "
        "2.886), on English and German (toke en 3.167 → 3.488, de 3.778 → 4.172), not Python. "
        "Not the prior (without it: 3.436 and 2.871), and not the long tokens: "
        "results/piece_mix.md (next table) finds it in the shared one-piece rows, which the "
        "default copies from SmolLM2 and the lm200 hypernet predicted. "
        "The prior helps the large vocabularies (−0.011 to −0.013; CLIP −0.019) and costs mon "
        "0.015. "
        "`lossless: no` marks tokenizers that change the text (CLIP and MiniLM lower-case and "
        "collapse whitespace, toke drops characters it has no token for, Claude's NFKC): "
        "their bpb scores an easier text. The first full run took 68 min wall (33 cells, "
        "each export + eval) on the 2-core CPU, shared with other training jobs; the "
        "hypernet's 17 cells now take ~5 min (308 s with the prior, 315 s without).",
    },
    {
        "title": "Which tokens does the step-5100 default predict worse than the 200-step one?",
        "table": "results/piece_mix.md",
        "plot": None,
        "command": "python experiments/piece_mix.py --targets toke mon llama3 llama2 --ranges "
        "4- 1-3 1-1",
        "what": "both hypernets' transfers (without a new-row prior) mixed row by row: `a` "
        "(the default) with `b`'s (hypernets/smollm2_lm200) rows for the tokens of 4+, 1–3 or "
        "exactly 1 SmolLM2 piece; same protocol as the table above. The long tokens are not "
        "where the default loses toke and mon: with `b`'s rows of 4+ pieces toke gets worse "
        "(3.436 → 3.475) and mon barely moves (2.871 → 2.863). **The one-piece rows are**: "
        "with `b`'s, toke drops to 2.905 and mon to 2.646, below both hypernets, while "
        "Llama-3 (1.841 → 1.911) and Llama-2 (1.705 → 1.750) get worse. Nearly all of those "
        "rows are tokens SmolLM2 has too (shared: 12.4% and 17.2% of the vocabularies in "
        "the table above, ~2.03k and ~11.05k tokens, against 2,037 and 11,057 one-piece "
        "rows): the "
        "default copies their SmolLM2 rows exactly (`hypernet.copy_single`, on since the "
        "compose stage), the lm200 hypernet predicted them (no copy). So on a character-level "
        "tokenizer (toke) "
        "or a Burmese/Mon one, SmolLM2's own rows for single characters (plausibly: rare as "
        "whole tokens in SmolLM2's own tokenization, which merges them) are a worse start "
        "than a predicted row, and on mainstream tokenizers a better one. A correction of shared rows that the net learns would be the fix; it "
        "is not trained today (the net never saw gradients for copied rows). One seed; "
        "~1–1.5 min per target on the 2-core CPU.",
    },
    {
        "title": "Training with compose pretraining (compose stage, then LM stage)",
        "table": "results/train_curve.md",
        "plot": "results/train_curve_hours.png",
        "command": "zett train --config configs/smollm2_cpu_compose.yaml && "
        "python experiments/train_curve.py --run hypernets/smollm2_compose_lm500",
        "what": "in-loop evaluation on the corpus valid split (6,000 bytes per language) with "
        "the unseen llama2 tokenizer; step 0 is the FVT (mean-of-pieces) initialization, steps "
        "1–1500 are the compose stage (no LM tokens), then LM steps of 1,024 tokens. `compose "
        "mse` is the held-out reconstruction error of base tokens from their merge parents "
        "(standardized units). The run's metrics.jsonl is committed with the hypernet, so "
        "the command after `&&` redraws this from a clone (stopped at step 2010 of 3500). Plots: vs wall hours (above; the compose stage sees no LM tokens) and "
        "vs LM tokens (results/train_curve_tokens.png).",
    },
    {
        "title": "Ablations of the paper (equal steps, same unseen tokenizer)",
        "table": "results/ablations.md",
        "plot": "results/ablations.png",
        "command": "python experiments/ablations.py --until 100",
        "what": "each variant changes one thing of configs/smollm2_cpu.yaml (see "
        "configs/ablation_*.yaml) and follows its 200-step schedule, stopped after 100 steps; "
        "in-loop bits per byte on the corpus valid split (6,000 bytes per language) with the "
        "unseen llama2 tokenizer. `fvt (step 0)` is every variant's start. Each variant is "
        "~15 min on the 2-core CPU; differences this early are small, so read them as "
        "direction, not effect size (one seed).",
    },
    {
        "title": "Ablations at the full schedule, every unseen target (test split)",
        "table": "results/ablations_zero_shot.md",
        "plot": None,
        "command": "python experiments/ablations.py --zero-shot no_noise lw0",
        "what": "mean bits per byte (en, de, ru, python; 4,000 test bytes each) of the "
        "hypernet after all 200 steps, same protocol as the zero-shot table; `default` is "
        "the previous default hypernet (hypernets/smollm2_lm200), `fvt` the mean-of-pieces start. Trained on to 200 steps: the "
        "variant that won at 100 steps (no_noise) and the one that lost most (lw0), ~13 min "
        "each on the 2-core CPU.",
    },
    {
        "title": "n-shot: continued training after transfer",
        "table": "results/nshot.md",
        "plot": "results/nshot.png",
        "command": "python experiments/nshot.py --hypernet hypernets/smollm2 "
        "--methods hypernet fvt focus --steps 120 "
        "--eval-every 20 --lr 3e-4",
        "what": "SmolLM2 → llama2, embeddings-only continued training (4 × 128 tokens per step) "
        "from the step-5100 default (`hypernet`), FVT and FOCUS; mean bits per byte on the "
        "valid split (en + python, 2,000 bytes each) vs step. About 4 min per method on the "
        "2-core CPU (this run took 246 s: the fvt and focus rows are cached from the run "
        "with the previous default, which does not change them).",
    },
    {
        "title": "n-shot on the German-only 16k tokenizer: does training close the 16k gap?",
        "table": "results/nshot_de16k/nshot.md",
        "plot": "results/nshot_de16k/nshot.png",
        "command": "python experiments/nshot.py --hypernet hypernets/smollm2_big4730 --target "
        "local-de-16k --methods hypernet fvt --steps 120 --eval-every 20 --lr 3e-4 --langs en "
        "de ru python --results results/nshot_de16k",
        "what": "SmolLM2 → zero_shot.py's German-only 16k BPE (`local-de-16k`, trained by the "
        "same recipe, byte-identical), embeddings-only continued training (4 × 128 tokens per "
        "step) from the step-4730 hypernet (the default of 2026-12-07 late) and from FVT; mean "
        "bits per byte on the valid split (en, de, ru, python, 2,000 bytes each). Neither "
        "comes near the 1.40× of the real targets: after 61k tokens the hypernet is at 1.87× "
        "the original (German alone 1.920 → 1.808) and flattening, FVT at 2.15×; the "
        "hypernet's zero-shot start (2.662) is already below FVT after all 120 steps (2.687). "
        "So the 16k gap is not a missing n-shot step at this scale; it sits in the other "
        "languages: on the test split the transferred model's German already beats the "
        "original's (1.937 vs 2.057 bpb, first table), while a German-only vocabulary cuts "
        "English, Russian and Python into short pieces (0.479 tokens per byte vs SmolLM2's "
        "0.344). Embeddings only; one seed. "
        "~10 min per method alone on the 2-core CPU (the hypernet run took 21 min sharing it "
        "with training).",
    },
    {
        "title": "n-shot objectives at equal CPU time: causal LM vs cross-tokenizer distillation",
        "table": "results/nshot_distill.md",
        "plot": "results/nshot_distill.png",
        "command": "python experiments/nshot_distill.py --hypernet hypernets/smollm2 "
        "--inits fvt hypernet --cpu-seconds 200",
        "what": "SmolLM2 → llama2, embeddings only, 4 windows × ~128 tokens per step, the same "
        "budget of 200 training CPU seconds per run (1 torch thread; evals excluded; the cosine "
        "decay spans the budget). `clm` = next-token cross-entropy with llama2, `distill` = "
        "approximate likelihood matching against the original SmolLM2 (binarised KL of aligned "
        "chunk probabilities, zett/distill.py). Mean bits per byte on the valid split (en + "
        "python, 2,000 bytes each), interpolated at the common CPU budget; curves vs tokens in "
        "results/nshot_distill_tokens.png. A distill step costs ~1.5× a clm step (the teacher "
        "forward), so distill sees about a third fewer tokens, yet ends lower from both inits "
        "(1.139 vs 1.172 from FVT, 1.117 vs 1.151 from the step-5100 default hypernet, which "
        "starts at 1.160 against FVT's 1.204 and stays ahead under either objective); clm at "
        "the default lr (1e-3) makes English worse after its first steps (FVT: 1.328 → 1.356 "
        "en bpb, the hypernet 1.276 → 1.330) and both clm runs rise from step 5 before falling back, while distill "
        "improves en and python alike. One seed, 200 CPU s each: the FVT runs (2026-12-04) took "
        "≈ 20 min wall each, two in parallel on a CPU shared with other jobs, the hypernet runs "
        "(2026-12-07, rerun with the new default) 4.5 min each, two in parallel on an "
        "otherwise idle CPU, and so fitted more steps into the same CPU seconds (62 vs 51 "
        "clm steps): compare within an init, not across. The very start of training only.",
    },
    {
        "title": "all-MiniLM-L6-v2: sentence-embedding agreement after transfer",
        "table": "results/minilm_transfer.md",
        "plot": "results/minilm_transfer.png",
        "command": "zett train --config configs/minilm.yaml && "
        "python experiments/minilm_transfer.py --hypernet runs/minilm/hypernet",
        "what": "cosine between sentence embeddings under the original and the new tokenizer "
        "on 300 held-out English sentences, and retrieval of the right sentence (top-1, MRR). "
        "`hypernet`: 400 steps of the sentence-agreement objective (12 min on the 2-core CPU).",
    },
    {
        "title": "Applying a base model's transfer to a fine-tuned variant",
        "table": "results/apply_finetuned.md",
        "plot": None,
        "command": "python experiments/apply_finetuned.py --hypernet hypernets/smollm2",
        "what": "bits per byte of a locally fine-tuned SmolLM2 with its own tokenizer, and "
        "with embeddings transferred for the base (the step-5100 default, and FVT). 212 s "
        "on the 2-core CPU.",
    },
    {
        "title": "Reliability: fuzzing and fault injection",
        "table": "results/reliability.md",
        "plot": None,
        "command": "python experiments/reliability_table.py",
        "what": "every file type the project reads, fuzzed; kills at random points; outcomes.",
    },
]


def bench_table(path: Path) -> str:
    data = json.loads(path.read_text())
    lines = [f"Measured on {data['machine']} ({data['date']}), `make bench`:", ""]
    lines += ["| benchmark | result |", "|---|---|"]
    for name, entry in data["benchmarks"].items():
        shown = {k: v for k, v in entry.items() if not isinstance(v, (dict, list))}
        text = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        )
        lines.append(f"| {name} | {text} |")
    meshes = data["benchmarks"].get("memory", {}).get("meshes", {})
    if meshes:
        lines += [
            "",
            "Llama-3-8B-sized base + hypernet, compiled memory per device (8 fake CPU "
            "devices, `experiments/bench_memory.py`):",
            "",
            "| mesh (data×fsdp×model) | arguments GiB | temporaries GiB |",
            "|---|---|---|",
        ]
        for mesh, m in meshes.items():
            lines.append(f"| {mesh} | {m['argument_gib']:.1f} | {m['temp_gib']:.1f} |")
    return "\n".join(lines)


def render() -> str:
    parts = []
    for s in SECTIONS:
        parts.append(f"### {s['title']}\n")
        table = ROOT / s["table"]
        if not table.is_file():
            parts.append(f"_Not run yet:_ `{s['command']}`.\n")
            continue
        parts.append(f"Command: `{s['command']}` — {s['what']}\n")
        parts.append(table.read_text().strip() + "\n")
        if s["plot"] and (ROOT / s["plot"]).is_file():
            parts.append(f"![{s['title']}]({s['plot']})\n")
    bench = ROOT / "results" / "bench.json"
    parts.append("### Speed and memory (`make bench`)\n")
    parts.append(bench_table(bench) + "\n" if bench.is_file() else "_Not run yet:_ `make bench`.\n")
    return "\n".join(parts)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"{readme}: markers {START} / {END} missing", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render()}\n{END}{tail}")
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
