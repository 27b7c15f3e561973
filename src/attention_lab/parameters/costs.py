"""``parameters_fine_tuning.yml``: the ``costs`` section (inference cost of each variant)."""

from __future__ import annotations

from pydantic import StrictBool

from attention_lab.parameters.base import Settings
from attention_lab.validation import Count


class CostSettings(Settings):
    """``costs``: the context length, how many tokens to decode, repeats."""

    SECTION = "costs"
    context_tokens: Count = 512
    decode_tokens: Count = 32
    repeats: Count = 3
    enabled: StrictBool = True
