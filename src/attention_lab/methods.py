"""Fine-tuning methods as objects: what each one trains, what it saves and what it needs.

Every decision that depends on the method reads one of these facts; the parameters each
method unfreezes are set by :func:`attention_lab.training.methods.prepare`, one function per
method. Imports nothing heavy, so config checks and readers can ask.
"""

from __future__ import annotations

from dataclasses import dataclass

from attention_lab.errors import ConfigError


@dataclass(frozen=True)
class FineTuningMethod:
    name: str
    trains: str  # in words, for messages and docs
    updates_weights: bool  # false: the pretrained model is evaluated as it is
    head_only: bool = False  # only the task head trains (features can be computed once)
    adapter: bool = False  # a peft LoRA adapter; saved alone over its base model
    needs_classifier: bool = False  # only a classification task has a head to train

    def saves_adapter(self, converts_weights: bool) -> bool:
        """Whether the saved folder is an adapter over the base model. A converted mechanism
        (calibrated pooling, MLA, a gate) cannot be rebuilt from the base checkpoint, so its
        LoRA variant is merged and saved whole."""
        return self.adapter and not converts_weights


NONE = FineTuningMethod("none", "nothing: the pretrained model as it is", updates_weights=False)
HEAD = FineTuningMethod(
    "head",
    "the classifier head only",
    updates_weights=True,
    head_only=True,
    needs_classifier=True,
)
LORA = FineTuningMethod(
    "lora", "low-rank adapters on the attention projections", updates_weights=True, adapter=True
)
FULL = FineTuningMethod("full", "every weight", updates_weights=True)
METHODS = {method.name: method for method in (NONE, HEAD, LORA, FULL)}


def method_named(name: str, where: str = "method") -> FineTuningMethod:
    """The method called ``name``, or one line naming the allowed ones."""
    if name not in METHODS:
        raise ConfigError(f"{where}: unknown method {name!r}; allowed: {', '.join(METHODS)}.")
    return METHODS[name]
