"""Small pieces of English used where the project writes text (pose descriptions, prompt templates)."""

from __future__ import annotations

import hashlib

_VOWELS = "aeiouAEIOU"

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def article(word: str) -> str:
    """``an`` before a vowel letter, else ``a`` (enough for the class and label names used here)."""
    return "an" if word[:1] and word[0] in _VOWELS else "a"


def count_in_words(n: int) -> str:
    """English words for a count (0..999); other numbers are written with digits."""
    if n < 0 or n >= 1000:
        return str(n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + (f" and {count_in_words(rest)}" if rest else "")


def join_words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def pick_variant(options: list[str] | tuple[str, ...], key: str) -> str:
    """One of ``options``, chosen deterministically from ``key`` (the same key always gets the same one)."""
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")
    return options[h % len(options)]
