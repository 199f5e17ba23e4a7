"""Every way to give a base model embeddings for a new tokenizer, behind one interface.

    inputs = build_inputs(loaded, base_tok, target_tok, options={"texts": [...]})
    new = METHODS["fvt"](inputs)            # NewEmbeddings(input [V_t, D], output, bias)

A method maps `TransferInputs` to `NewEmbeddings` (numpy float32, one row per target id,
`V_t = len(target_forms)`). The registry wraps each method with one finishing step, so no
method can forget it: rows are cast to float32 and checked for shape; `output` is kept only
when the base is untied and `bias` only when it has an output bias (BERT's MLM head); and
every target special token gets the base row of the same role (`map_special_tokens`), since
a special token's surface text (`</s>` → `<`, `/`, `s`, `>`) means nothing, and every
*neutral* row (no base pieces: a special token without a base counterpart, bytes the base
cannot write, an id with no token; `Decomposition.neutral`) gets the mean of the base rows.

Most baselines are *linear recipes over base rows* (mean, FVT, lexical copy, FOCUS, OMP): a
target row is a weighted sum of base rows. They are written once as a function from one base
matrix `[V_b, D']` to `[V_t, D']` and applied alike to the input matrix, the untied output
matrix and the output bias (as `[V_b, 1]`), so input, output and bias always agree.

Methods (names as in the paper's baseline table):
- random   Gaussian with the base embeddings' per-dimension mean and full covariance.
- mean     every token = the mean of all base embeddings.
- fvt      Fast Vocabulary Transfer (Gee et al. 2022): mean of *all* the token's base pieces
           (no truncation unless `options["max_pieces"]` is given).
- lexical  copy rows of tokens whose canonical bytes the base also has; FVT for the rest.
- focus    FOCUS (Dobler & de Melo 2023), simplified, see `zett.transfer.focus`.
- omp      Orthogonal matching pursuit through a donor model that already speaks the target
           tokenizer (as mergekit's tokensurgeon): needs `options["donor"]`.
- hypernet the trained hypernetwork (`options["hypernet"]` = its directory).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import tokenizers

from zett.errors import ZettError
from zett.hypernet.io import check_base, check_params, embedding_fingerprint, load_hypernet
from zett.hypernet.predict import predict_vocab
from zett.models.load import LoadedModel, get_embeddings, load_model
from zett.tokenizers.decompose import Decomposition, decompose, shared_tokens
from zett.tokenizers.special import map_special_tokens
from zett.tokenizers.surface import SurfaceForms, surface_forms
from zett.transfer import prior as new_row_prior
from zett.transfer.focus import focus_weights

DEFAULT_MAX_PIECES = None  # baselines use whole decompositions; the hypernet its own


@dataclass
class NewEmbeddings:
    """input [V_t, D] float32; output [V_t, D] float32 or None (tied); bias [V_t] or None."""

    input: np.ndarray
    output: np.ndarray | None = None
    bias: np.ndarray | None = None


@dataclass
class TransferInputs:
    """Everything a method may need about the base and the target tokenizer.

    `shared` = (target ids, base ids) int32 [K] of tokens with equal canonical bytes;
    `special` maps target special ids to base rows of the same role. `options` carries
    method settings: seed, max_pieces, texts (FOCUS), donor (OMP), hypernet, omp_k, ...
    """

    base: LoadedModel
    base_tokenizer: tokenizers.Tokenizer
    base_forms: SurfaceForms
    target_tokenizer: tokenizers.Tokenizer
    target_forms: SurfaceForms
    shared: tuple[np.ndarray, np.ndarray]
    special: dict[int, int]
    options: dict[str, Any] = field(default_factory=dict)
    _decompositions: dict[int | None, Decomposition] = field(default_factory=dict, repr=False)
    _matrices: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = field(
        default=None, repr=False
    )

    @property
    def n_target(self) -> int:
        return len(self.target_forms)

    def matrices(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Base (input [V_b, D], output [V_b, D] | None when tied, bias [V_b] | None), f32."""
        if self._matrices is None:
            inp, out, bias = get_embeddings(self.base, self.base.params)
            self._matrices = (
                np.asarray(inp, dtype=np.float32),
                None if out is None else np.asarray(out, dtype=np.float32),
                None if bias is None else np.asarray(bias, dtype=np.float32),
            )
        return self._matrices

    def decomposition(self, max_pieces: int | None = None) -> Decomposition:
        """Base pieces of every target token (cached per `max_pieces`; None = every piece),
        ids checked against the model's rows."""
        p = max_pieces or self.options.get("max_pieces", DEFAULT_MAX_PIECES)
        p = None if p is None else int(p)
        if p not in self._decompositions:
            d = decompose(self.target_forms, self.base_tokenizer, p)
            n_rows = self.matrices()[0].shape[0]
            if d.ids.size and d.ids.max() >= n_rows:
                raise ZettError(
                    f"base tokenizer has ids ≥ the model's {n_rows} embedding rows; "
                    "the base directory's tokenizer.json does not match its model"
                )
            self._decompositions[p] = d
        return self._decompositions[p]


EmbeddingMethod = Callable[[TransferInputs], NewEmbeddings]
METHODS: dict[str, EmbeddingMethod] = {}


def build_inputs(
    base: LoadedModel,
    base_tokenizer: tokenizers.Tokenizer,
    target_tokenizer: tokenizers.Tokenizer,
    options: dict[str, Any] | None = None,
) -> TransferInputs:
    """Surface forms, shared tokens and the special-token map for one base/target pair."""
    base_forms = surface_forms(base_tokenizer)
    target_forms = surface_forms(target_tokenizer)
    n_rows = int(get_embeddings(base, base.params)[0].shape[0])
    special = map_special_tokens(target_forms, base_forms)
    t_roles, b_roles = target_forms.roles, base_forms.roles
    if "eos" in t_roles and "eos" in b_roles:  # a bos-and-eos token (GPT's <|endoftext|>)
        special[t_roles["eos"]] = b_roles["eos"]  # acts as eos: generation stops on it
    special = {t: b for t, b in special.items() if b < n_rows}
    inputs = TransferInputs(
        base=base,
        base_tokenizer=base_tokenizer,
        base_forms=base_forms,
        target_tokenizer=target_tokenizer,
        target_forms=target_forms,
        shared=(np.zeros(0, np.int32), np.zeros(0, np.int32)),
        special=special,
        options=dict(options or {}),
    )
    # Shared = equal bytes *and* the base tokenizer writes them with that very token.
    inputs.shared = shared_tokens(target_forms, base_forms, n_rows, inputs.decomposition())
    return inputs


# ------------------------------------------------------------------------- the registry


def _neutral_ids(inputs: TransferInputs) -> np.ndarray:
    """Target ids with no base pieces: `finish` gives them the mean base row."""
    return np.nonzero(inputs.decomposition().neutral[: inputs.n_target])[0]


def _special_pairs(inputs: TransferInputs) -> list[tuple[int, int]]:
    """(target id, base row) of the special tokens: `finish` copies the base row."""
    return [(t, b) for t, b in inputs.special.items() if t < inputs.n_target]


def finished_rows(inputs: TransferInputs) -> np.ndarray:
    """Mask of the target rows `finish` sets itself (neutral and special), whatever the
    method predicted for them: a step after `finish` leaves them alone."""
    mask = np.zeros(inputs.n_target, bool)
    mask[_neutral_ids(inputs)] = True
    mask[[t for t, _ in _special_pairs(inputs)]] = True
    return mask


def finish(new: NewEmbeddings, inputs: TransferInputs) -> NewEmbeddings:
    """Conform a method's result to the base layout; neutral rows get the mean base row,
    special tokens their base counterpart's row."""
    base_in, base_out, base_bias = inputs.matrices()
    v, d = inputs.n_target, base_in.shape[1]
    inp = np.array(new.input, dtype=np.float32)
    if inp.shape != (v, d):
        raise ValueError(f"method returned input {inp.shape}, expected {(v, d)}")
    out = None
    if base_out is not None:
        out = inp.copy() if new.output is None else np.array(new.output, dtype=np.float32)
        if out.shape != (v, d):
            raise ValueError(f"method returned output {out.shape}, expected {(v, d)}")
    bias = None
    if base_bias is not None:
        if new.bias is None:  # a method without a bias: FVT of the base bias
            bias = _fvt(inputs, base_bias[:, None])[:, 0]
        else:
            bias = np.array(new.bias, dtype=np.float32).reshape(v)
    neutral = _neutral_ids(inputs)
    if neutral.size:
        inp[neutral] = base_in.mean(0)
        if out is not None and base_out is not None:  # out exists iff base_out does
            out[neutral] = base_out.mean(0)
        if bias is not None and base_bias is not None:  # likewise the bias
            bias[neutral] = base_bias.mean()
    for t, b in _special_pairs(inputs):
        inp[t] = base_in[b]
        if out is not None and base_out is not None:
            out[t] = base_out[b]
        if bias is not None and base_bias is not None:
            bias[t] = base_bias[b]
    return NewEmbeddings(inp, out, bias)


def register(
    name: str, after: Callable[[NewEmbeddings, TransferInputs], NewEmbeddings] | None = None
) -> Callable[[EmbeddingMethod], EmbeddingMethod]:
    """Add a method to METHODS, wrapped with `finish` (and then `after`, when given)."""

    def deco(fn: EmbeddingMethod) -> EmbeddingMethod:
        @functools.wraps(fn)
        def wrapped(inputs: TransferInputs) -> NewEmbeddings:
            new = finish(fn(inputs), inputs)
            return new if after is None else after(new, inputs)

        METHODS[name] = wrapped
        return wrapped

    return deco


def linear_recipe(inputs: TransferInputs, recipe: Callable[[np.ndarray], np.ndarray]):
    """Apply `recipe` ([V_b, D'] → [V_t, D']) to the input, output and bias matrices alike."""
    base_in, base_out, base_bias = inputs.matrices()
    return NewEmbeddings(
        input=recipe(base_in),
        output=None if base_out is None else recipe(base_out),
        bias=None if base_bias is None else recipe(base_bias[:, None])[:, 0],
    )


# ------------------------------------------------------------------------- the methods


def _fvt(inputs: TransferInputs, matrix: np.ndarray) -> np.ndarray:
    """[V_t, D'] mean of each target token's base-piece rows; empty tokens get the mean row.

    Summed one piece position at a time, so memory stays at O(V_t · D') for any max_pieces.
    """
    d = inputs.decomposition()
    v, p = d.ids.shape
    out = np.zeros((v, matrix.shape[1]), np.float32)
    for j in range(p):
        live = d.lengths > j
        out[live] += matrix[d.ids[live, j]]
    out /= np.maximum(d.lengths, 1)[:, None].astype(np.float32)
    out[d.lengths == 0] = matrix.mean(0)
    return out


def _copy_shared(inputs: TransferInputs, matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    t_ids, b_ids = inputs.shared
    rows[t_ids] = matrix[b_ids]
    return rows


@register("random")
def random_init(inputs: TransferInputs) -> NewEmbeddings:
    """Gaussian rows with the base matrix's mean `[D]` and covariance `[D, D]`."""
    rng = np.random.default_rng(int(inputs.options.get("seed", 0)))
    v = inputs.n_target

    def gaussian(m: np.ndarray) -> np.ndarray:
        m64 = m.astype(np.float64)
        mu = m64.mean(0)
        if m.shape[1] == 1:
            return (mu + m64.std() * rng.standard_normal((v, 1))).astype(np.float32)
        cov = np.cov(m64, rowvar=False) + 1e-8 * np.eye(m.shape[1])
        chol = np.linalg.cholesky(cov)
        return (mu + rng.standard_normal((v, m.shape[1])) @ chol.T).astype(np.float32)

    return linear_recipe(inputs, gaussian)


@register("mean")
def mean_init(inputs: TransferInputs) -> NewEmbeddings:
    """Every target row = the mean of all base rows."""
    v = inputs.n_target
    return linear_recipe(inputs, lambda m: np.repeat(m.mean(0, keepdims=True), v, axis=0))


@register("fvt")
def fvt_init(inputs: TransferInputs) -> NewEmbeddings:
    """FVT: each target row = mean of all its base pieces' rows (or the first
    `options["max_pieces"]` when set)."""
    return linear_recipe(inputs, lambda m: _fvt(inputs, m))


@register("lexical")
def lexical_init(inputs: TransferInputs) -> NewEmbeddings:
    """Copy rows of shared tokens (equal canonical bytes); FVT for the others."""
    return linear_recipe(inputs, lambda m: _copy_shared(inputs, m, _fvt(inputs, m)))


@register("focus")
def focus_init(inputs: TransferInputs) -> NewEmbeddings:
    """FOCUS: shared tokens copied; the others a sparsemax mix of shared tokens' rows."""
    t_ids, b_ids = inputs.shared
    weights = focus_weights(inputs.target_tokenizer, inputs.n_target, t_ids, inputs.options)
    return linear_recipe(inputs, lambda m: _apply_weights(inputs, m, weights, b_ids))


@register("omp")
def omp_init(inputs: TransferInputs) -> NewEmbeddings:
    """OMP: donor-space sparse codes over shared tokens, replayed on the base rows."""
    donor = inputs.options.get("donor")
    if not donor:
        raise ZettError(
            "--donor: the omp baseline needs a donor model directory that already uses the "
            "target tokenizer (e.g. --donor path/to/Llama-2-hf); none was given"
        )
    t_ids, b_ids = inputs.shared
    donor_in = _donor_embeddings(Path(donor), inputs.n_target)
    k = int(inputs.options.get("omp_k", 64))
    weights = omp_weights(donor_in, t_ids, k)
    return linear_recipe(inputs, lambda m: _apply_weights(inputs, m, weights, b_ids))


def _apply_weights(inputs, matrix, weights, b_ids) -> np.ndarray:
    """Lexical copy, then rows `t` in `weights` = Σ_k w_k · matrix[b_ids[atom_k]]; FVT where
    a token has no weights (FOCUS: unseen in the texts)."""
    rows = _copy_shared(inputs, matrix, _fvt(inputs, matrix))
    ids, atoms, coef = weights  # [N], [N, k] indices into shared, [N, k]
    if len(ids):
        rows[ids] = np.einsum("nk,nkd->nd", coef, matrix[b_ids[atoms]]).astype(np.float32)
    return rows


def omp_weights(donor: np.ndarray, shared_t: np.ndarray, k: int, block: int = 256):
    """Sparse codes of every non-shared target token over the shared tokens, in donor space.

    donor: [V_t, D_d] donor input embeddings (the donor uses the target tokenizer);
    shared_t: [K] target ids of shared tokens (the dictionary atoms). Greedy OMP: pick the
    atom most correlated (cosine) with the residual, re-fit all picked coefficients by least
    squares, repeat `k` times. Returns (ids [N], atoms [N, k] positions in `shared_t`,
    coef [N, k]). Cost ≈ N · K · D_d · k flops: minutes for a 32k vocabulary on a CPU.
    """
    shared_t = np.asarray(shared_t)
    ids = np.setdiff1d(np.arange(donor.shape[0]), shared_t).astype(np.int64)
    if not len(shared_t):
        raise ZettError("omp: the target and base tokenizers share no token to combine")
    k = max(1, min(k, len(shared_t)))
    dictionary = donor[shared_t].astype(np.float64)  # [K, D_d]
    unit = dictionary / np.maximum(np.linalg.norm(dictionary, axis=1, keepdims=True), 1e-12)
    atoms = np.zeros((len(ids), k), np.int64)
    coef = np.zeros((len(ids), k), np.float32)
    for s in range(0, len(ids), block):
        x = donor[ids[s : s + block]].astype(np.float64)  # [B, D_d]
        b = len(x)
        picked = np.zeros((b, k), np.int64)
        resid, c = x.copy(), np.zeros((b, 1))
        rows = np.arange(b)[:, None]
        for step in range(k):
            corr = np.abs(resid @ unit.T)  # [B, K]
            corr[rows, picked[:, :step]] = -1.0
            picked[:, step] = corr.argmax(1)
            a = dictionary[picked[:, : step + 1]]  # [B, s, D_d]
            gram = a @ a.transpose(0, 2, 1) + 1e-8 * np.eye(step + 1)
            c = np.linalg.solve(gram, (a @ x[:, :, None]))[..., 0]  # [B, s]
            resid = x - np.einsum("bs,bsd->bd", c, a)
        atoms[s : s + b] = picked
        coef[s : s + b] = c
    return ids, atoms, coef


def _donor_embeddings(donor: Path, n_target: int) -> np.ndarray:
    if not (donor / "config.json").is_file():
        raise ZettError(f"--donor {donor}: no config.json; give a HF model directory")
    loaded = load_model(donor)
    emb = np.asarray(get_embeddings(loaded, loaded.params)[0], dtype=np.float32)
    if emb.shape[0] < n_target:
        raise ZettError(
            f"--donor {donor}: {emb.shape[0]} embedding rows < the target's {n_target} ids; "
            "the donor must use the target tokenizer"
        )
    return emb[:n_target]


def shift_new_rows(new: NewEmbeddings, inputs: TransferInputs) -> NewEmbeddings:
    """After `finish`: the hypernet's new-row prior (zett.transfer.prior), when it has one
    and `options["new_row_prior"]` is not False, shifts the logits of the target rows the
    base vocabulary lacks. Copied, neutral and special rows keep the logits `finish` gave
    them; the shift is the prior's for all rows outside the copied ones."""
    if not inputs.options.get("new_row_prior", True):
        return new
    prior = new_row_prior.load(inputs.options["hypernet"], int(new.input.shape[1]))
    if prior is None:
        return new
    v = inputs.n_target
    rows = np.ones(v, bool)
    rows[inputs.shared[0]] = False
    n_new = int(rows.sum())
    rows &= ~finished_rows(inputs)
    inputs.options["new_row_shift"] = round(prior.shift(n_new), 4)  # → provenance
    return NewEmbeddings(*prior.apply(rows, new.input, new.output, new.bias, n_new=n_new))


@register("hypernet", after=shift_new_rows)
def hypernet_init(inputs: TransferInputs) -> NewEmbeddings:
    """The trained hypernetwork (`options["hypernet"]`), refused for another base model;
    its new-row prior is applied after `finish` (`shift_new_rows`)."""
    directory = inputs.options.get("hypernet")
    if not directory:
        raise ZettError("--hypernet: the hypernet method needs a hypernet directory")
    module, params, meta = load_hypernet(Path(directory))
    base_in, base_out, _ = get_embeddings(inputs.base, inputs.base.params)
    check_base(meta, embedding_fingerprint(base_in), Path(directory))
    check_params(module, params, base_in, base_out, Path(directory))
    d = inputs.decomposition(module.dims.max_pieces)
    # predict_vocab sorts tokens by piece count and trims each block to its longest token.
    pred = predict_vocab(
        module,
        params,
        d.ids,
        d.lengths,
        jnp.asarray(base_in, jnp.float32),
        None if base_out is None else jnp.asarray(base_out, jnp.float32),
        target_logprobs(inputs.target_tokenizer, inputs.n_target),
        block=int(inputs.options.get("block", 4096)),
        progress=bool(inputs.options.get("progress", True)),
        complete=inputs.base_forms.complete_text(base_in.shape[0]),
    )
    return NewEmbeddings(pred.input, pred.output, pred.bias)


def target_logprobs(tok: tokenizers.Tokenizer, n: int) -> np.ndarray:
    """float32 [n] unigram log-probs: a Unigram model's scores, else uniform log(1/n).

    (The hypernet only reads them with `prior_input` / `use_unigram_bias`; BPE/WordPiece
    targets have no probabilities, and uniform is the neutral prior.)
    """
    import json

    model = json.loads(tok.to_str())["model"]
    out = np.full(n, -np.log(n), np.float32)
    if model.get("type") == "Unigram":
        for i, (_, score) in enumerate(model.get("vocab") or []):
            if i < n:
                out[i] = score
    return out
