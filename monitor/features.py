"""Text to features for the classifier: the house-spelling normalisation, tokens, the codebook's cue
lexicons, and the sparse binary features of one item (with how a reader would say each of them).

Features: word unigrams and bigrams of title + summary, the title's words again on their own (the codebook
judges "from the title first"; its bigrams too cost a sixth of the time for no gain on the development set),
five-letter word stems, and cue patterns for the codebook's decision points (response framing, an act "after"
an attack, threats, tallies, talks).  Before tokenising, text is lower-cased and the house spellings of a
few deciding compounds are made one ("cease-fire" and "ceasefire", "air strike" and "airstrike", "U.S." and
"US").  Pure functions and a prediction index, run for every item: kept to C-level loops.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain

VERSION = 3  # raise it whenever ``features`` may return something else for a text: it enters model versions
MAX_CHARS = 2000
_TOKEN = re.compile(r"([^\W\d_]+)|\d+")  # a number matches without the group: it comes back as ""
# Outlets spell the same compound three ways ("cease-fire", "ceasefire"; "air strike", "airstrike"); one form
# each, so a model trained on one house style reads the others.  Only compounds that decide labels.
_COMPOUND = re.compile(
    r"\b(?:cease[- ]fire|air[- ]strike|counter[- ](?:attack|offensive|strike)|cyber[- ]attack|de-escalat)"
)
_COMPOUND_TRIGGERS = ("cease", "air strike", "air-strike", "counter", "cyber", "de-escalat")  # cheap tests first
_ABBREVIATIONS = (("u.s.", "us "), ("u.n.", "un "), ("u.k.", "uk "))  # "U.S." -> the "us" of "US"
_MONTHS = "january february march april may june july august september october november december"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(text: str) -> frozenset[str]:
    return frozenset(text.split("|"))


# Cue lexicons for the codebook's decision points; matched on tokens and token bigrams (fast, no regex).
_CUE_WORDS: dict[str, frozenset[str]] = {
    "response": _words(
        "avenge avenged avenging punitive reprisal reprisals retaliate retaliated retaliates retaliating "
        "retaliation retaliatory retribution riposte"
    ),
    "threat": _words(
        "mulls pledge pledged pledges promise promised promises threat threaten threatened threatens "
        "threats ultimatum vow vowed vows warn warned warning warnings warns weighs"
    ),
    "talks": _words(
        "accord agreement calm cease ceasefire ceasefires de deal deescalate deescalation escalation exchange freed "
        "halt halted halts mediated mediation mediator mediators negotiation negotiations negotiators pause paused "
        "pullback release released releases restraint suspend suspended suspends suspension swap talks "
        "truce withdraw withdrawal withdraws withdrew"
    ),
    "condemn": _words(
        "condemn condemnation condemned condemns decries decry denounce denounced denounces expel "
        "expelled expels protest protests sanction sanctions summon summoned summons"
    ),
    "after": _words("after following"),
    "tally": _words("cumulative tally toll total"),
    "figurative": _words(
        "cyber cyberattack goal goals hacker hackers heart league match panic price prices ransomware "
        "season shares stocks striker strikers tariff tariffs"
    ),
}
_CUE_BIGRAMS: dict[str, frozenset[str]] = {
    "response": _phrases(
        "answer to|for tat|hit back|hits back|in answer|in response|in return|in revenge|reprisal for|"
        "responded to|response to|retaliation for|revenge for|strike back|strikes back|struck back|tit for"
    ),
    "threat": _phrases("could retaliate|vows to|will respond|will retaliate|would respond"),
    "tally": _phrases("0 attacks|0 nd|0 rd|0 st|0 strikes|0 th|since mid|so far")
    | frozenset(f"since {month}" for month in _MONTHS.split()),
}

_CUE_INDEX: dict[str, str] = {
    term: name for lexicons in (_CUE_WORDS, _CUE_BIGRAMS) for name, lexicon in lexicons.items() for term in lexicon
}


_ANSWERING = frozenset("response retaliation reprisal revenge answer retribution".split())
_HOSTILE_NOUNS = frozenset(
    "attack attacks strike strikes airstrike airstrikes counterattack killing killings raid raids ambush bombing "
    "bombings rocket rockets drone drones shelling assault assaults barrage missile missiles".split()
)


def answers_an_attack(words: list[str], reach: int = 8) -> bool:
    """A response word followed within ``reach`` words by an attack noun: "in response to the attacks on..."."""
    if _ANSWERING.isdisjoint(words):  # the usual case, decided in C
        return False
    for i, word in enumerate(words):
        if word in _ANSWERING and not _HOSTILE_NOUNS.isdisjoint(words[i + 1 : i + 1 + reach]):
            return True
    return False


# Rule 8's "after" framing: the side that was hit strikes back "after" the attack.  An act word ("strikes",
# "launches", "pounds"), then "after"/"following", then an attack word: "US launches airstrikes in Syria after
# drone kills contractor".  A consequence before "after" ("nine killed after raid", "shipyard on fire after
# attack") is no act, so "killed" and "fire" are not act words.
_AFTER = frozenset(("after", "following"))
_ACTS = frozenset(
    "strike strikes struck airstrike airstrikes counterstrike bomb bombs bombed bombard bombards bombarded shell "
    "shells shelled pound pounds pounded hit hits launch launches launched raid raids raided target targets "
    "targeted attack attacks attacked".split()
)
_ATTACK_WORDS = _HOSTILE_NOUNS | frozenset(
    "attacked blast bomb bombed explosion fire fired hit hits kill killed kills pounded pounds salvo shelled "
    "shooting shoots shot struck".split()
)


def act_after_attack(words: list[str], before: int = 12, reach: int = 8) -> bool:
    """An act word within ``before`` words ahead of "after"/"following", and an attack word within ``reach``
    words behind it: the shape of "X strikes Y after Y's attack on X" (the model learns how far to trust it)."""
    if _AFTER.isdisjoint(words):  # the usual case, decided in C
        return False
    for i, word in enumerate(words):
        if (
            word in _AFTER
            and not _ACTS.isdisjoint(words[max(i - before, 0) : i])
            and not _ATTACK_WORDS.isdisjoint(words[i + 1 : i + 1 + reach])
        ):
            return True
    return False


def cues(terms: list[str]) -> set[str]:
    """Names of the cue lexicons that these words or bigrams touch."""
    return set(map(_CUE_INDEX.__getitem__, _CUE_INDEX.keys() & terms))


@dataclass(frozen=True)
class Document:
    title: str
    summary: str = ""


def normalise(text: str) -> str:
    """Lower case, with the spelling variants of a few compounds and abbreviations made one."""
    text = text.lower()
    for dotted, plain in _ABBREVIATIONS:
        if dotted in text:
            text = text.replace(dotted, plain)
    for trigger in _COMPOUND_TRIGGERS:  # most texts have none: skip the regex (this runs twice per item)
        if trigger in text:
            return _COMPOUND.sub(_joined, text)
    return text


def _joined(match: re.Match[str]) -> str:
    return match.group(0).replace("-", "").replace(" ", "")


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers of the normalised text; every number becomes "0"."""
    return [token or "0" for token in _TOKEN.findall(normalise(text))]  # one regex pass


def _parts(doc: Document) -> tuple[list[str], list[str], list[str]]:
    """Title words, summary words, and the word pairs of both read as one text."""
    title_words, summary_words = tokens(doc.title[:MAX_CHARS]), tokens(doc.summary[:MAX_CHARS])
    words = title_words + summary_words
    return title_words, summary_words, list(map(" ".join, zip(words, words[1:])))  # C-level loops: runs per item


def _cue_names(title_words: list[str], summary_words: list[str], pairs: list[str]) -> tuple[set[str], set[str]]:
    """The cues that the title and the summary touch (the one pair that spans both counts for neither)."""
    cut = len(title_words)
    in_title, in_summary = cues(title_words + pairs[: max(cut - 1, 0)]), cues(summary_words + pairs[cut:])
    for name, found_in in (("answers-attack", answers_an_attack), ("act-after-attack", act_after_attack)):
        if found_in(title_words):
            in_title.add(name)
        if found_in(summary_words):
            in_summary.add(name)
    return in_title, in_summary


def features(doc: Document) -> set[str]:
    """The sparse binary features of one item (see the module docstring)."""
    title_words, summary_words, pairs = _parts(doc)
    words = title_words + summary_words
    found = set(words)
    found.update(pairs)
    found.update(map("T:".__add__, title_words))
    found.update(["S:" + w[:5] for w in words if len(w) > 5])
    in_title, in_summary = _cue_names(title_words, summary_words, pairs)
    found.update(map("CT:".__add__, in_title))
    found.update(map("CS:".__add__, in_summary))
    return found


class _Memo(dict[str, tuple[int, ...]]):
    """A dict that computes a missing entry once (lookups of known keys stay in C)."""

    def __init__(self, make: Callable[[str], tuple[int, ...]]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: str) -> tuple[int, ...]:
        value = self[key] = self.make(key)
        return value


class FeatureIndex:
    """``features(doc)`` as the column numbers of one vocabulary, for prediction: the same set, found faster.

    A word's own column and its stem's come from one remembered lookup per distinct word, so the stem and
    title strings are never built per item (a fifth off the feature stage, ``bench_classify``).  What it
    remembers is bounded: past ``memo_limit`` words it starts again."""

    def __init__(self, vocabulary: Mapping[str, int], memo_limit: int = 100_000) -> None:
        self._vocabulary = vocabulary
        self._pairs = {name: i for name, i in vocabulary.items() if " " in name and ":" not in name}
        self._word, self._title = _Memo(self._word_columns), _Memo(self._title_columns)
        self.memo_limit = memo_limit

    def _word_columns(self, word: str) -> tuple[int, ...]:
        names = (word, "S:" + word[:5]) if len(word) > 5 else (word,)
        return tuple(self._vocabulary[n] for n in names if n in self._vocabulary)

    def _title_columns(self, word: str) -> tuple[int, ...]:
        column = self._vocabulary.get("T:" + word)
        return () if column is None else (column,)

    def columns(self, doc: Document) -> set[int]:
        if len(self._word) > self.memo_limit:
            self._word.clear()
            self._title.clear()
        title_words, summary_words, pairs = _parts(doc)
        found = set(chain.from_iterable(map(self._word.__getitem__, title_words + summary_words)))
        found.update(chain.from_iterable(map(self._title.__getitem__, title_words)))
        found.update(map(self._pairs.__getitem__, self._pairs.keys() & pairs))
        in_title, in_summary = _cue_names(title_words, summary_words, pairs)
        cue_features = [*map("CT:".__add__, in_title), *map("CS:".__add__, in_summary)]
        found.update(self._vocabulary[f] for f in cue_features if f in self._vocabulary)
        return found


# Words that carry grammar, not news: the model may lean on them ("has", "will" mark reports and forecasts),
# but as evidence for a reader they say nothing, so explanations leave them out.
_FUNCTION_WORDS = _words(
    "a about after against all also am an and any are as at be been before being but by can could did do does "
    "for from had has have he her his how i if in into is it its may me might more most my no not of on or our "
    "out over s said say says she should so some such than that the their them then there these they this "
    "those to told under up was we were what when where which while who why will with would you 0"
)


def telling(feature: str) -> bool:
    """Whether a feature says something to a reader: not only function words and numbers."""
    kind, _, rest = feature.partition(":")
    words = (rest if rest and kind in ("T", "S") else feature).split(" ")
    return kind in ("CT", "CS") or not _FUNCTION_WORDS.issuperset(words)


def describe(feature: str) -> str:
    """A feature as a reader would say it."""
    kind, _, rest = feature.partition(":")
    if kind in ("CT", "CS"):
        return f"{rest.replace('-', ' ')} cue in {'title' if kind == 'CT' else 'summary'}"
    if kind == "S":
        return rest + "…"
    if kind == "T":
        return f"“{rest}” (title)"
    return f"“{feature}”"
