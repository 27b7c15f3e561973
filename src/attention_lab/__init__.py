"""Attention Lab: how attention mechanisms and fine-tuning change transformer attention."""

__version__ = "0.1.0"
