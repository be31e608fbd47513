"""Do a string column's levels look like an ordered scale? A hint for the plan, never a
decision: R mice (and sparkmice) impute an unordered factor by polyreg, an ordered one by
polr, and only the user knows which a column is.

Scales recognised (at least three levels, all of them on one scale):

* a shared prefix and small whole numbers starting at 0 or 1: ``G1..G5``, ``P1..P6``,
  ``stage 1..4``, ``grade_0..grade_3``, or bare numbers ``"1".."5"``;
* the same with Roman numerals: ``I..IV``, ``stage I..stage IV``, ``NYHA II``;
* numeric bands: ``0-17, 18-39, 40-64, 65+`` (ordered by their lower bound);
* the words of a Likert or severity scale: low/medium/high, none/mild/moderate/severe,
  never/rarely/sometimes/often/always, strongly disagree..strongly agree, poor..excellent,
  very dissatisfied..very satisfied, very unlikely..very likely.

Numbers must start at 0 or 1 and leave at most two gaps, so codes such as ICD-10's
E10/E11/E13 or I21/J45 do not look like a scale; single letters (regions A-E, blood
groups) never do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

__all__ = ["ordered_hint", "ordered_scale"]

MIN_LEVELS = 3
MAX_GAPS = 2  # unobserved steps allowed inside a numbered scale
MAX_STEP = 10  # numbered scales end at 10 at most (a 0-10 pain score)

# Words of a prefix are separated by one blank, "_" or "-", so each level parses one way
# (no nested quantifiers to backtrack over).
_NUMBERED = re.compile(r"^(?P<prefix>(?:[a-z]+(?:[ _-][a-z]+)*)?)[ _-]?(?P<number>\d{1,2})$")
_ROMAN = re.compile(r"^(?P<prefix>(?:[a-z]+[ _-])*)(?P<number>[ivx]{1,4})$")
_BAND = re.compile(r"^(?:(?P<low>\d+)\s*(?:-|–|to)\s*(?P<high>\d+)|(?P<open>\d+)\s*\+|"
                   r"(?:<|under\s)\s*(?P<below>\d+)|(?:>|over\s)\s*(?P<above>\d+))$")  # fmt: skip
_ROMAN_VALUES = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8,
                 "ix": 9, "x": 10}  # fmt: skip

#: Word scales, lowest first; a column's levels must all be words of one scale.
WORD_SCALES: tuple[tuple[str, ...], ...] = (
    ("very low", "low", "medium", "moderate", "high", "very high"),
    ("none", "minimal", "mild", "moderate", "severe", "very severe"),
    ("never", "rarely", "occasionally", "sometimes", "often", "usually", "always"),
    ("strongly disagree", "disagree", "somewhat disagree", "neutral",
     "neither agree nor disagree", "somewhat agree", "agree", "strongly agree"),
    ("very poor", "poor", "fair", "good", "very good", "excellent"),
    ("very dissatisfied", "dissatisfied", "neutral", "satisfied", "very satisfied"),
    ("very unlikely", "unlikely", "neutral", "likely", "very likely"),
)  # fmt: skip


def _normal(level: str) -> str:
    """Lower case, inner blanks and underscores as one space, trimmed."""
    return re.sub(r"[\s_]+", " ", level.strip().lower())


def _numbered(levels: Sequence[str]) -> list[str] | None:
    """Levels with one prefix and small, nearly consecutive numbers, by number."""
    for pattern, value in ((_NUMBERED, int), (_ROMAN, _ROMAN_VALUES.get)):
        matches = [pattern.match(_normal(level)) for level in levels]
        if not all(matches):
            continue
        prefixes = {m["prefix"].strip(" _-") for m in matches if m}
        numbers = [n for m in matches if m and (n := value(m["number"])) is not None]
        if len(prefixes) != 1 or len(set(numbers)) != len(levels):
            continue
        low, high = min(numbers), max(numbers)
        if low <= 1 and high <= MAX_STEP and high - low + 1 - len(numbers) <= MAX_GAPS:
            return [level for _, level in sorted(zip(numbers, levels, strict=True))]
    return None


def _bands(levels: Sequence[str]) -> list[str] | None:
    """Numeric bands (``18-39``, ``65+``, ``<18``), by lower bound, if they do not overlap."""
    bounds = []
    for level in levels:
        m = _BAND.match(_normal(level))
        if m is None:
            return None
        if m["low"] is not None:
            low, high = int(m["low"]), int(m["high"])
        elif m["open"] is not None:
            low, high = int(m["open"]), 10**9
        elif m["below"] is not None:
            low, high = -1, int(m["below"]) - 1
        else:
            low, high = int(m["above"]) + 1, 10**9
        if high < low:
            return None
        bounds.append((low, high, level))
    bounds.sort()
    if any(b[0] <= a[1] for a, b in zip(bounds, bounds[1:], strict=False)):
        return None
    return [level for _, _, level in bounds]


def _words(levels: Sequence[str]) -> list[str] | None:
    """Levels that are all words of one scale, in the scale's order."""
    normal = [_normal(level) for level in levels]
    for scale in WORD_SCALES:
        if all(n in scale for n in normal):
            return [level for _, level in sorted(zip(map(scale.index, normal), levels,
                                                     strict=True))]  # fmt: skip
    return None


def ordered_scale(levels: Sequence[object]) -> tuple[str, ...] | None:
    """The levels in scale order if they look like an ordered scale, else None.

    Only string levels, at least three, distinct after normalising case and blanks.
    """
    if len(levels) < MIN_LEVELS or not all(isinstance(v, str) for v in levels):
        return None
    strings = [str(v) for v in levels]
    if len({_normal(s) for s in strings}) != len(strings):
        return None
    for detect in (_numbered, _bands, _words):
        found = detect(strings)
        if found is not None:
            return tuple(found)
    return None


def ordered_hint(name: str, levels: Sequence[object]) -> str | None:
    """For a nominal column whose levels look ordered: what the plan log says, with the
    one config line (YAML, also JSON and a Python dict) that declares it ordered."""
    order = ordered_scale(levels)
    if order is None:
        return None
    line = json.dumps({"kind": {name: "ordered"}, "levels": {name: list(order)}},
                      ensure_ascii=False)  # fmt: skip
    return (
        f"levels {' < '.join(order)} look like an ordered scale; imputed as unordered "
        f"unless declared ordered (then polr), e.g. with this config line: {line}"
    )
