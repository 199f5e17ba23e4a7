"""zett: zero-shot tokenizer transfer with hypernetworks (JAX/Flax)."""

__version__ = "0.1.0"
