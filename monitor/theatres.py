"""Which theatres an item names.  Pure.

A theatre is named by any of its terms: whole words, case-insensitive,
multi-word terms allowed ("Kataib Hezbollah", "Red Sea").  Spelling variants
are the config's job (list each as a term); the code only folds case and the
apostrophes and hyphens that outlets write differently (’ vs ', - vs –).
All terms of all theatres go into one regular expression, so the cost per
item does not grow with the number of theatres.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_FOLD = str.maketrans({"’": "'", "‘": "'", "`": "'", "–": "-", "—": "-", "‐": "-", "\u00a0": " "})


@dataclass(frozen=True)
class TheatreTerms:
    id: str
    terms: tuple[str, ...]


def fold(text: str) -> str:
    """Lower case, one kind of apostrophe and hyphen, single spaces."""
    return " ".join(text.translate(_FOLD).lower().split())


class TheatreMatcher:
    """Finds every theatre whose terms a text names."""

    def __init__(self, theatres: Sequence[TheatreTerms]) -> None:
        self._owners: dict[str, set[str]] = {}
        for theatre in theatres:
            for term in theatre.terms:
                if fold(term):
                    self._owners.setdefault(fold(term), set()).add(theatre.id)
        alternatives = sorted(self._owners, key=lambda t: (-len(t), t))
        body = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in alternatives)
        self._pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)") if alternatives else None

    def match(self, *texts: str) -> tuple[str, ...]:
        """Sorted ids of the theatres named anywhere in ``texts``."""
        if self._pattern is None:
            return ()
        found: set[str] = set()
        for text in texts:
            for hit in self._pattern.findall(fold(text)):
                found |= self._owners[" ".join(hit.split())]
        return tuple(sorted(found))


def matcher_from_config(theatres: Iterable[object]) -> TheatreMatcher:
    """Build a matcher from the config's theatre entries (objects with ``id`` and ``terms``)."""
    return TheatreMatcher([TheatreTerms(t.id, tuple(t.terms)) for t in theatres])  # type: ignore[attr-defined]
