"""Tokenizer-independent evaluation: bits per byte, tokens per byte, encoder agreement, plots.

`bpb` scores causal LMs (any exported HF checkpoint or the original), `embedding_agreement`
scores transferred sentence encoders, `texts` supplies the held-out texts, `plots` draws
the figures in experiments/. Submodules import torch/matplotlib lazily; import them directly.
"""
