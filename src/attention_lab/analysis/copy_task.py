"""A task with a known attention answer: a small encoder-decoder trained from scratch to copy
its input must look, at each step, at the source token it is copying. The test suite and the
cross-attention notebook use it to show that a stored cross-attention map is the one the
model used."""

from __future__ import annotations

import torch
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

VOCAB, LENGTH, PAD, EOS, START = 32, 6, 1, 2, 2


def copy_model(steps: int = 2000, seed: int = 0) -> BartForConditionalGeneration:
    """No encoder layer (embeddings only, so source tokens stay unmixed and the only way to read
    token i is to attend to it), one decoder layer with one cross-attention head, trained to copy."""
    torch.manual_seed(seed)
    config = BartConfig(
        vocab_size=VOCAB,
        d_model=128,
        encoder_layers=0,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=1,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=32,
        pad_token_id=PAD,
        bos_token_id=0,
        eos_token_id=EOS,
        decoder_start_token_id=START,
        forced_eos_token_id=None,
        dropout=0.0,
        attention_dropout=0.0,
    )
    model = BartForConditionalGeneration(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        source = torch.randint(4, VOCAB, (64, LENGTH), generator=generator)
        labels = torch.cat([source, torch.full((64, 1), EOS)], dim=1)  # copy, then stop
        loss = model(input_ids=source, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def word_tokenizer(vocab_size: int, pad: int, padding_side: str) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``t0 … t{vocab_size - 1}``: text ``"t5 t9"`` is ids ``[5, 9]``.

    The pad and unknown tokens get names that no word contains: special tokens are split out
    of the text before words are, so a pad token ``t1`` would cut ``t12`` in two.
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    names = {pad: "<pad>", 3: "<unk>"}
    vocab = {names.get(i, f"t{i}"): i for i in range(vocab_size)}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", padding_side=padding_side
    )
