"""Our own Flax (Linen) base LMs that reproduce transformers' PyTorch models.

Why Linen: parameters are plain nested dicts of arrays (pytrees). That makes the three things
the hypernetwork trainer needs trivial: freezing the base LM (it is just an argument of the loss,
never in the optimizer), swapping its embedding matrices (`load.set_embeddings` or the
`inputs_embeds=` / `output_embeddings=` call arguments) and sharding by logical axis names
(`nn.with_logical_partitioning` on every parameter; `zett.sharding` maps the names to mesh axes,
model code never names a mesh axis).

Families (one module each): `llama` (Llama 2/3, Mistral, Qwen2, Qwen3, SmolLM2), `gpt2`, `bert`
(BERT / RoBERTa / XLM-R, MLM head optional, masked-mean sentence embeddings). `load` maps
Hugging Face safetensors ⇄ our parameter trees.

Every model has the same calling convention:

    logits = model.apply({"params": params}, input_ids, *, inputs_embeds=None,
                         attention_mask=None, output_embeddings=None, output_bias=None,
                         return_hidden=False)

`input_ids` `[batch, seq]` int; `inputs_embeds` `[batch, seq, d_model]` replaces the lookup;
`attention_mask` `[batch, seq]` (1 = real token, 0 = padding); `output_embeddings` `[vocab', d_model]`
(+ `output_bias` `[vocab']`) replaces the LM head; returns float32 logits `[batch, seq, vocab]` or
the final hidden states `[batch, seq, d_model]` with `return_hidden=True`.

Logical axis names used on parameters: "vocab", "embed", "heads", "kv_heads", "mlp", "norm"
(plus "position" for learned position tables and "type" for token-type tables).

The numerical primitives and Flax blocks the three families share are in `layers`; this
file only names the public entry points.
"""

from zett.models.bert import Bert, masked_mean, sentence_embedding
from zett.models.gpt2 import GPT2
from zett.models.layers import LOGICAL_AXES, Embedder, activation, attention
from zett.models.llama import Llama

__all__ = [
    "GPT2",
    "LOGICAL_AXES",
    "Bert",
    "Embedder",
    "Llama",
    "activation",
    "attention",
    "masked_mean",
    "sentence_embedding",
]
