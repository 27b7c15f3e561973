"""Sequence-to-sequence: generate the label name; cross-attention shows what the decoder reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, EncoderDecoderModel

from attention_lab.tasks.base import AttentionBatch, Task, mask_positions

GENERATED_TOKENS = 6  # the answer extraction attends while producing (a topic name is short)


def generated_mask(generated: torch.Tensor, eos: int | list[int] | None) -> torch.Tensor:
    """(B, Td) True on the real decoder tokens of ``generate``'s output: the start token and
    everything up to and including the first end-of-sequence token. ``generate`` pads a
    finished answer after its end, so this holds whatever the pad and start ids are (T5
    starts with its pad id; a tokenizer without a pad token pads with its end token)."""
    eos_ids = torch.tensor([] if eos is None else eos, device=generated.device).flatten()
    ends = torch.isin(generated, eos_ids)  # (B, Td)
    ends[:, 0] = False  # the start token is never the end
    after_end = (ends.int().cumsum(-1) - ends.int()) > 0  # strictly after the first end
    return ~after_end


class Seq2Seq(Task):
    name = "seq2seq"
    peft_task_type = "SEQ_2_SEQ_LM"
    streams_layers = False  # decoder tokens exist only after generation

    def load_pretrained(self, source: str, num_labels: int | None, **common):
        """A native encoder-decoder, or an encoder-only checkpoint warm-started as bert2bert
        (Rothe et al., 2020)."""
        config = AutoConfig.from_pretrained(
            source, trust_remote_code=common.get("trust_remote_code", False)
        )
        if getattr(config, "is_encoder_decoder", False):
            return AutoModelForSeq2SeqLM.from_pretrained(source, **common)
        return EncoderDecoderModel.from_encoder_decoder_pretrained(source, source, **common)

    def configure(self, model, tokenizer) -> None:
        """A warm-started bert2bert knows no decoder tokens: [CLS] starts, [SEP] ends."""
        if getattr(model.config, "decoder_start_token_id", None) is not None:
            return
        for config in (model.config, model.generation_config):
            config.decoder_start_token_id = tokenizer.cls_token_id or tokenizer.bos_token_id
            config.eos_token_id = tokenizer.sep_token_id or tokenizer.eos_token_id
            config.pad_token_id = tokenizer.pad_token_id

    def labels_for(self, frame: pd.DataFrame, tokenizer) -> list[list[int]]:
        return [
            tokenizer(name, truncation=True, max_length=8)["input_ids"]
            for name in frame["label_name"]
        ]

    def pad_labels(self, labels, padded):
        width = max(len(x) for x in labels)
        return torch.tensor([x + [-100] * (width - len(x)) for x in labels])

    def observe(self, state, output, batch) -> None:
        mask = batch["labels"] != -100
        hit = (output.logits.argmax(-1) == batch["labels"]) | ~mask
        state.setdefault("correct", []).extend(hit.all(dim=-1).tolist())

    def outcomes(self, state, test) -> dict:
        return {"correct": np.array(state["correct"], dtype=bool)}

    def finish(self, state, test, loss, info) -> dict:
        return {"eval_loss": round(loss, 4), "accuracy": round(float(np.mean(state["correct"])), 4)}

    def attention_batch(self, model, tokenizer, batch, kinds) -> AttentionBatch:
        """Attend while producing the model's own answer: encoder, decoder and cross maps."""
        generated = model.generate(**batch, max_new_tokens=GENERATED_TOKENS, do_sample=False)
        out = model(**batch, decoder_input_ids=generated, output_attentions=True)
        every_kind = {
            "encoder": out.encoder_attentions,
            "decoder": out.decoder_attentions,
            "cross": out.cross_attentions,
        }
        decoder_mask = generated_mask(generated, model.generation_config.eos_token_id)
        return AttentionBatch(
            maps={kind: maps for kind, maps in every_kind.items() if kind in kinds},
            positions={
                "encoder": mask_positions(batch["attention_mask"]),
                "decoder": mask_positions(decoder_mask),
            },
            decoder_ids=[
                ids[mask].tolist() for ids, mask in zip(generated, decoder_mask, strict=True)
            ],
        )
