"""Attention Lab: how attention mechanisms and fine-tuning change transformer attention."""

import warnings

__version__ = "0.1.0"

# Known third-party deprecation notices a user can do nothing about, printed once per process
# (so once per ParallelRunner worker): Kedro's own OmegaConf call, and transformers' Trainer
# asking for a renamed attribute.
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)
warnings.filterwarnings(
    "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
)
