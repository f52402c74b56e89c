"""Class labels for zero-shot classification: the one parser of the command line, ``predict`` and ``serve``.

>>> parse_labels(" running, sitting\\njumping ,")
['running', 'sitting', 'jumping']
>>> parse_labels(["sitting, on a chair", "standing"])  # a list: one label per item, commas kept
['sitting, on a chair', 'standing']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from focusclip.errors import UsageError

logger = logging.getLogger(__name__)


def parse_labels(labels: str | Sequence[str], max_labels: int | None = None) -> list[str]:
    """The labels of ``labels``: a text is split at commas and new lines, a sequence gives one label per
    item; blanks are stripped and empty labels dropped.

    Args:
        labels: ``"running, sitting"`` (text typed by a person) or ``["running", "sitting"]`` (lines of a
            labels file, a Python list).
        max_labels: the most labels allowed (None: no limit).

    Returns:
        The labels in their order.

    Raises:
        UsageError (a ``ValueError``): fewer than two labels, more than ``max_labels``, or a repeated label.
        Labels that differ only in case get a warning (most text towers read them the same).
    """
    items = re.split(r"[,\n]", labels) if isinstance(labels, str) else [str(lab) for lab in labels]
    out = [lab.strip() for lab in items if lab.strip()]
    if len(out) < 2:
        raise UsageError("zero-shot classification needs at least two labels, separated by commas or new lines "
                         f"(got {len(out)}{': ' + out[0] if out else ''})")
    if max_labels is not None and len(out) > max_labels:
        raise UsageError(f"{len(out)} labels; at most {max_labels} are allowed")
    dupes = sorted({lab for lab in out if out.count(lab) > 1})
    if dupes:
        raise UsageError(f"labels must be unique; repeated: {', '.join(dupes)}")
    folded: dict[str, list[str]] = {}
    for lab in out:
        folded.setdefault(lab.casefold(), []).append(lab)
    for same in (v for v in folded.values() if len(v) > 1):
        logger.warning("labels %s differ only in case; most text towers read them the same", " / ".join(same))
    return out
