"""Text tokenisation outside the model: pad to the longest text in the batch, truncate and report it."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from focusclip.errors import UsageError

logger = logging.getLogger(__name__)


class Tokenizer:
    """Wraps a Hugging Face fast tokenizer.

    ``tokenizer(texts) -> {"input_ids": LongTensor[B, L], "attention_mask": LongTensor[B, L]}`` with ``L`` the
    longest text in the batch (at most ``context_length``). Texts longer than ``context_length`` are
    truncated; ``num_truncated`` and ``num_texts`` count them over the tokenizer's life (nothing is logged
    per call: the job that tokenises reports the total once, see :func:`truncation_summary`).
    ``pad_to_max=True`` pads every batch to ``context_length`` (the reference code's behaviour, kept for
    comparisons).
    """

    def __init__(self, hf_tokenizer, context_length: int, pad_to_max: bool = False, source: str = ""):
        self.hf = hf_tokenizer
        self.context_length = int(context_length)
        self.pad_to_max = pad_to_max
        self.source = source
        self.pad_token_id = int(hf_tokenizer.pad_token_id or 0)
        self.num_truncated = 0
        self.num_texts = 0

    def __call__(self, texts: str | list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise UsageError("tokenizer got an empty list of texts")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("tokenizer expects strings")
        enc = self.hf(texts, padding="max_length" if self.pad_to_max else "longest", truncation=True,
                      max_length=self.context_length, return_overflowing_tokens=False,
                      return_length=False, return_tensors="pt")
        self.num_truncated += self._count_truncated(texts, enc["attention_mask"])
        self.num_texts += len(texts)
        return {"input_ids": enc["input_ids"].long(), "attention_mask": enc["attention_mask"].long()}

    def _count_truncated(self, texts: list[str], mask: torch.Tensor) -> int:
        full = mask.sum(1) >= self.context_length
        if not bool(full.any()):
            return 0
        idx = full.nonzero().flatten().tolist()
        lengths = self.hf([texts[i] for i in idx], truncation=False, add_special_tokens=True,
                          return_length=True)["length"]
        return sum(1 for n in lengths if n > self.context_length)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        self.hf.save_pretrained(str(path))


def load_hf_tokenizer(location: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(location)


def truncation_summary(truncated: int, total: int, context_length: int, what: str = "texts") -> str | None:
    """One line for a job's end: how many of its ``total`` texts were cut at ``context_length`` tokens."""
    if not truncated:
        return None
    return (f"{truncated} of {total} {what} ({100 * truncated / max(total, 1):.1f}%) were longer than "
            f"{context_length} tokens and were truncated")
