"""Texts longer than the text tower: the strategies a model config (``text.long_text``) or a training
config (``model.long_text``) selects.

=============  ==================================================================================
strategy       what happens to a text longer than the tower's positions
=============  ==================================================================================
``truncate``   its first ``context_length - 1`` tokens and the end-of-text token are encoded (the
               default; what CLIP itself does)
``sentences``  every sentence is tokenised as its own row of one batch; the model averages the
               normalised sentence embeddings of each text (:func:`mean_per_text`)
``stretch``    the tower's positional embeddings are stretched as in Long-CLIP (ECCV 2024): the
               first 20 positions are kept, the rest interpolated to 248 positions in all
               (:func:`stretch_positions`), for fine-tuning
=============  ==================================================================================

``sentences`` works with every text tower (it happens around the tower); ``stretch`` needs a tower
with learned absolute positions that can be resized (the whole-CLIP towers). How much text a strategy
loses is reported by :meth:`focusclip.model.tokenizer.Tokenizer.length_report`.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from focusclip.errors import UsageError

LONG_TEXT_STRATEGIES = ("truncate", "sentences", "stretch")
STRETCH_KEEP = 20         #: positions kept as they are (Long-CLIP)
STRETCH_POSITIONS = 248   #: positions after stretching (Long-CLIP: 20 kept + the other 57 x 4)

#: ``Tokenizer`` output key: for every encoded row (a sentence), the index of the text it belongs to.
SENTENCE_KEY = "sentence_to_text"

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def check_strategy(strategy: str, where: str = "text.long_text") -> str:
    if strategy not in LONG_TEXT_STRATEGIES:
        raise UsageError(f"{where}: unknown long-text strategy {strategy!r}; known: "
                         f"{', '.join(LONG_TEXT_STRATEGIES)}")
    return strategy


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after ``. ! ? ;`` followed by white space); never empty."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    parts = [p for p in parts if p]
    return parts or [text]


def sentence_rows(texts: list[str]) -> tuple[list[str], list[int]]:
    """(all sentences of all texts in order, the text index of each sentence)."""
    rows: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        for s in split_sentences(text):
            rows.append(s)
            owner.append(i)
    return rows, owner


def mean_per_text(features: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """(T, D) means of the L2-normalised rows of ``features`` (S, D) grouped by ``owner`` (S,)."""
    n = int(owner.max()) + 1 if owner.numel() else 0
    unit = F.normalize(features.float(), dim=-1)
    summed = unit.new_zeros(n, unit.shape[1]).index_add_(0, owner, unit)
    counts = torch.bincount(owner, minlength=n).clamp_min(1).unsqueeze(1).to(unit.dtype)
    return (summed / counts).to(features.dtype)


def slice_texts(tokens: dict[str, torch.Tensor], start: int, stop: int) -> dict[str, torch.Tensor]:
    """The tokens of texts ``start:stop`` of a batch (sentence rows re-indexed), for micro-batches."""
    if SENTENCE_KEY not in tokens:
        return {k: v[start:stop] for k, v in tokens.items()}
    owner = tokens[SENTENCE_KEY]
    rows = (owner >= start) & (owner < stop)
    out = {k: v[rows] for k, v in tokens.items() if k != SENTENCE_KEY}
    out[SENTENCE_KEY] = owner[rows] - start
    return out


def stretch_positions(table: torch.Tensor, positions: int = STRETCH_POSITIONS,
                      keep: int = STRETCH_KEEP) -> torch.Tensor:
    """A positional-embedding table (P, D) stretched to ``positions`` rows, Long-CLIP style.

    Rows ``0..keep-1`` are copied. The other ``P - keep`` rows are spread over the remaining
    ``positions - keep`` slots: slot ``j`` reads source coordinate ``keep + j * (P - keep) / (positions -
    keep)``, linearly interpolated between its two neighbouring rows (beyond the last row, the line
    through the last two rows is continued). For 77 -> 248 that is a factor of 4.
    """
    p, _ = table.shape
    if positions <= p:
        raise UsageError(f"stretching needs more positions than the {p} there are, got {positions}")
    if not 0 < keep < p - 1:
        raise UsageError(f"keep must be between 1 and {p - 2}, got {keep}")
    rest = table[keep:].float()
    extended = torch.cat([rest, (2 * rest[-1] - rest[-2])[None]])  # one extrapolated row past the end
    coords = torch.arange(positions - keep, dtype=torch.float64) * (p - keep) / (positions - keep)
    lo = coords.floor().long()
    frac = (coords - lo).to(rest.dtype)[:, None]
    stretched = extended[lo] * (1 - frac) + extended[lo + 1] * frac
    return torch.cat([table[:keep].float(), stretched]).to(table.dtype)
