"""Data: the offline corpus (`corpus`, `sources`), per-batch tokenizer sampling (`sampler`)
and the batch pipeline (`pipeline`)."""
