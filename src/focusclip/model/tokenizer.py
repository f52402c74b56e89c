"""Text tokenisation outside the model: pad to the longest text in the batch, truncate and report it.

One :class:`Tokenizer` over two backends: a Hugging Face tokenizer (:class:`HFBackend`, BERT / MiniLM /
Hugging Face CLIP) or open_clip's own tokenizer (:class:`OpenCLIPBackend`, the BPE vocabulary shipped
inside the package). Both produce the ids the library itself would produce: a text that fits is
tokenised unchanged, a longer one keeps its first ``context_length - 1`` tokens and its final
special token (CLIP's end-of-text, BERT's [SEP]).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from focusclip.errors import UsageError
from focusclip.hub_access import hub_access
from focusclip.io import atomic_write_json
from focusclip.model.long_text import SENTENCE_KEY, check_strategy, sentence_rows
from focusclip.save_format import OPEN_CLIP_CONFIG

logger = logging.getLogger(__name__)

#: OPEN_CLIP_CONFIG marks a saved open_clip tokenizer folder (open_clip's own ``local-dir:`` layout).


@dataclass
class TextLengths:
    """How much text the context length cut: texts (rows) seen, truncated, tokens, tokens cut."""

    texts: int = 0
    truncated: int = 0
    tokens: int = 0
    tokens_cut: int = 0

    def add(self, lengths: list[int], context_length: int) -> None:
        self.texts += len(lengths)
        self.truncated += sum(1 for n in lengths if n > context_length)
        self.tokens += sum(lengths)
        self.tokens_cut += sum(n - context_length for n in lengths if n > context_length)

    @property
    def truncated_share(self) -> float:
        return self.truncated / self.texts if self.texts else 0.0

    @property
    def cut_share(self) -> float:
        """Share of all tokens that were cut."""
        return self.tokens_cut / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "truncated_share": round(self.truncated_share, 4),
                "cut_share": round(self.cut_share, 4)}


# ------------------------------------------------------------------------------ backends
class HFBackend:
    """A Hugging Face (fast) tokenizer."""

    def __init__(self, hf_tokenizer: Any):
        self.hf = hf_tokenizer
        self.pad_token_id = int(hf_tokenizer.pad_token_id or 0)

    def encode(self, rows: list[str], context_length: int, pad_to_max: bool
               ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        enc = self.hf(rows, padding="max_length" if pad_to_max else "longest", truncation=True,
                      max_length=context_length, return_tensors="pt")
        mask = enc["attention_mask"].long()
        lengths = mask.sum(1).tolist()
        full = [i for i, n in enumerate(lengths) if n >= context_length]
        if full:  # only texts at the limit can have been cut: measure those in full
            true = self.hf([rows[i] for i in full], truncation=False, add_special_tokens=True,
                           return_length=True)["length"]
            for i, n in zip(full, true):
                lengths[i] = int(n)
        return enc["input_ids"].long(), mask, lengths

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=True)

    def save(self, path: Path) -> None:
        self.hf.save_pretrained(str(path))


class OpenCLIPBackend:
    """open_clip's tokenizer (``open_clip.get_tokenizer``), with ``text_cfg`` its model's text config
    (saved so the tokenizer reloads offline through ``open_clip.get_tokenizer('local-dir:...')``)."""

    def __init__(self, tokenizer: Any, text_cfg: dict[str, Any]):
        self.tok = tokenizer
        self.text_cfg = dict(text_cfg)
        inner_pad = getattr(getattr(tokenizer, "tokenizer", None), "pad_token_id", None)  # open_clip's HFTokenizer
        self.pad_token_id = int(inner_pad if inner_pad is not None else self.text_cfg.get("pad_id", 0) or 0)

    def encode(self, rows: list[str], context_length: int, pad_to_max: bool
               ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        full = self._full_ids(rows, context_length)
        lengths = [len(r) for r in full]
        width = context_length if pad_to_max else min(max(lengths), context_length)
        out = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        for i, row in enumerate(full):
            if len(row) > context_length:  # open_clip's rule: the first tokens, the last becomes end-of-text
                row = row[:context_length - 1] + row[-1:]
            out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return out, (out != self.pad_token_id).long(), lengths

    def _full_ids(self, rows: list[str], context_length: int) -> list[list[int]]:
        """Every row's ids with its special tokens, untruncated."""
        tok = self.tok
        if getattr(tok, "reduction_fn", "absent") is None and hasattr(tok, "sot_token_id"):  # SimpleTokenizer
            return [[tok.sot_token_id, *tok.encode(r), tok.eot_token_id] for r in rows]
        ids = tok(rows, context_length=8 * context_length)  # other tokenizers: measured up to 8x
        return [[int(i) for i in row if int(i) != self.pad_token_id] for row in ids]

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        ids = [int(i) for i in ids if int(i) != self.pad_token_id]
        return self.tok.decode(ids).replace("<start_of_text>", "").replace("<end_of_text>", "").strip()

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        inner = getattr(self.tok, "tokenizer", None)
        if self.text_cfg.get("hf_tokenizer_name") and inner is not None and hasattr(inner, "save_pretrained"):
            inner.save_pretrained(str(path))  # open_clip's HFTokenizer reads a local-dir's own files
        atomic_write_json(path / OPEN_CLIP_CONFIG, {"model_cfg": {"text_cfg": self.text_cfg}})


# ------------------------------------------------------------------------------ the tokenizer
class Tokenizer:
    """``tokenizer(texts) -> {"input_ids": LongTensor[R, L], "attention_mask": LongTensor[R, L]}``.

    ``L`` is the longest row of the batch (at most ``context_length``; every batch is padded to
    ``context_length`` with ``pad_to_max=True``, the reference code's behaviour). Rows are the texts,
    or with ``long_text="sentences"`` their sentences, and the output then also holds
    ``"sentence_to_text"`` (LongTensor[R]: the text each row belongs to), which ``encode_text`` uses to
    average sentence embeddings per text. ``stats`` counts truncation over the tokenizer's life
    (``num_truncated`` / ``num_texts``); nothing is logged per call: the job that tokenises reports the
    total once (:func:`truncation_summary`, :meth:`length_report`).
    """

    def __init__(self, backend: HFBackend | OpenCLIPBackend | Any, context_length: int,
                 pad_to_max: bool = False, source: str = "", long_text: str = "truncate"):
        if not isinstance(backend, HFBackend | OpenCLIPBackend):
            backend = HFBackend(backend)  # a bare Hugging Face tokenizer
        self.backend = backend
        self.context_length = int(context_length)
        self.pad_to_max = pad_to_max
        self.source = source
        self.long_text = check_strategy(long_text)
        self.pad_token_id = backend.pad_token_id
        self.stats = TextLengths()

    @property
    def num_truncated(self) -> int:
        """Rows (texts, or sentences with ``long_text="sentences"``) cut so far."""
        return self.stats.truncated

    @property
    def num_texts(self) -> int:
        """Rows tokenised so far."""
        return self.stats.texts

    def __call__(self, texts: str | list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
        texts = _as_texts(texts)
        rows, owner = sentence_rows(texts) if self.long_text == "sentences" else (texts, None)
        ids, mask, lengths = self.backend.encode(rows, self.context_length, self.pad_to_max)
        self.stats.add(lengths, self.context_length)
        out = {"input_ids": ids, "attention_mask": mask}
        if owner is not None:
            out[SENTENCE_KEY] = torch.tensor(owner, dtype=torch.long)
        return out

    def length_report(self, texts: list[str], batch_size: int = 512) -> dict[str, Any]:
        """How much of ``texts`` this tokenizer would cut (its running ``stats`` are left unchanged)."""
        report = TextLengths()
        texts = _as_texts(texts)
        for i in range(0, len(texts), batch_size):
            chunk = texts[i:i + batch_size]
            rows = sentence_rows(chunk)[0] if self.long_text == "sentences" else chunk
            report.add(self.backend.encode(rows, self.context_length, False)[2], self.context_length)
        return {"context_length": self.context_length, "long_text": self.long_text,
                "source_texts": len(texts), **report.to_dict()}

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return self.backend.decode(ids)

    def save(self, path: str | Path) -> None:
        self.backend.save(Path(path))


def format_length_report(report: dict[str, Any]) -> str:
    """One line for logs: how many texts were cut and what share of tokens was lost."""
    unit = "sentences" if report["long_text"] == "sentences" else "texts"
    return (f"{report['truncated']} of {report['texts']} {unit} ({report['truncated_share']:.0%}) exceed "
            f"{report['context_length']} tokens; {report['cut_share']:.1%} of all tokens are cut "
            f"(long_text={report['long_text']})")


def _as_texts(texts: str | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise UsageError("tokenizer got an empty list of texts")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("tokenizer expects strings")
    return texts


def load_hf_tokenizer(location: str):
    from transformers import AutoTokenizer

    with hub_access(location):
        return AutoTokenizer.from_pretrained(location)


def load_open_clip_tokenizer(model_name: str | None, model_cfg: dict[str, Any] | None = None) -> OpenCLIPBackend:
    """open_clip's tokenizer for ``model_name`` (a built-in name, ``hf-hub:`` or ``local-dir:``), or for
    an architecture given as ``model_cfg`` (open_clip's model config dict)."""
    import open_clip

    if model_cfg is None:
        with hub_access(str(model_name).split(":", 1)[-1]):
            model_cfg = open_clip.get_model_config(model_name) or {}
            tok = open_clip.get_tokenizer(model_name)
    else:
        text_cfg = model_cfg.get("text_cfg", {})
        if text_cfg.get("hf_tokenizer_name"):
            tok = open_clip.tokenizer.HFTokenizer(text_cfg["hf_tokenizer_name"],
                                                  context_length=text_cfg.get("context_length", 77))
        else:
            tok = open_clip.SimpleTokenizer(context_length=text_cfg.get("context_length", 77),
                                            **text_cfg.get("tokenizer_kwargs", {}))
    return OpenCLIPBackend(tok, model_cfg.get("text_cfg", {}))


def truncation_summary(truncated: int, total: int, context_length: int, what: str = "texts") -> str | None:
    """One line for a job's end: how many of its ``total`` texts were cut at ``context_length`` tokens."""
    if not truncated:
        return None
    return (f"{truncated} of {total} {what} ({100 * truncated / max(total, 1):.1f}%) were longer than "
            f"{context_length} tokens and were truncated")
