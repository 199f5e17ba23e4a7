"""Data: the offline corpus — where it comes from (`sources`), its markup cleaners (`clean`),
its build (`build`, `zett prepare corpus`) and loading (`corpus`), byte budgets (`budget`) —
per-batch tokenizer sampling (`sampler`) and the batch pipeline (`pipeline`)."""
