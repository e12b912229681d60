"""Near-duplicate items -> one story; running tallies; retaliation chains.  Pure.

A *story* is one real-world event however many outlets report it. An item
joins an existing story when all of these hold:

- their labels are compatible (attack and retaliation are both hostile acts
  that outlets frame differently; de-escalation and other stand alone),
- they share a theatre (or neither names one),
- the item was published within ``window`` after the story's first report
  (or up to ``lead`` before it, for feeds that publish out of order), and
- their texts are similar: the IDF-weighted overlap coefficient of their
  content words, against the closest of the story's first reports (so a
  story cannot drift by chaining from one near neighbour to the next), reaches
  ``threshold``, and their rare words (names of places, people, ships) do
  not conflict: when both name rare things and share none of them, they are
  different events. Both settings are tuned on ``seeds/stories/pairs.jsonl``
  (``benchmarks/bench_stories.py`` prints the sweep).

IDF weights come from the classifier's training corpus, so frequent news
words ("attack", "forces") count little and names ("Erbil", "Tower 22") a
lot. Assignment is deterministic: items are taken in (published, id) order,
and an item exactly as close to two stories joins the one that arrived last,
whatever the hash seed (word weights are summed exactly, candidates are
ranked by arrival).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from monitor.features import tokens

HOSTILE = frozenset({"attack", "retaliation"})
STOPWORDS = frozenset(
    """
the a an and or but of in on at to for from by with as is are was were be been has have had it its this
that these those their they them he she his her we our you your who whom which what when where why how
not no than then there here after before over under into out up down about amid while during since also
said says say saying told according new more most some any all one two three four five six seven eight
nine ten first second last least other such only very just can could would will may might must should
did does do being per via us 0 s t
""".split()
)


@dataclass(frozen=True)
class StoryParams:
    threshold: float = 0.10
    rare: float = 0.60  # words with IDF above this share of the maximum count as names
    window: timedelta = timedelta(hours=48)
    lead: timedelta = timedelta(hours=12)
    leaders: int = 5  # an item is compared with a story's earliest reports only, so stories cannot drift
    index_level: float = 0.45  # words rarer than this share of the maximum IDF find candidate stories


@dataclass(frozen=True)
class Idf:
    """Inverse document frequencies of words; unseen words get the maximum."""

    weights: Mapping[str, float]
    unseen: float

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], n_docs: int) -> Idf:
        weights = {w: math.log((n_docs + 1) / (c + 1)) + 1 for w, c in counts.items()}
        return cls(weights, math.log(n_docs + 1) + 1)

    def of(self, word: str) -> float:
        return self.weights.get(word, self.unseen)


def signature(title: str, summary: str) -> frozenset[str]:
    """Content words of an item: no stopwords, no one- or two-letter tokens."""
    return frozenset(w for w in tokens(f"{title} {summary}") if len(w) > 2 and w not in STOPWORDS)


def similarity(a: frozenset[str], b: frozenset[str], idf: Idf) -> float:
    """IDF-weighted overlap coefficient: shared weight over the lighter side's weight."""
    if not a or not b:
        return 0.0
    # fsum: exact whatever order a set yields its words in, so ties do not depend on the hash seed
    shared = math.fsum(idf.of(w) for w in a & b)
    lighter = min(math.fsum(idf.of(w) for w in a), math.fsum(idf.of(w) for w in b))
    return shared / lighter if lighter else 0.0


def names_conflict(a: frozenset[str], b: frozenset[str], idf: Idf, rare: float) -> bool:
    """Both sides name rare things (places, people, ships) and none of them is shared: different events."""
    level = idf.unseen * rare
    rare_a = {w for w in a if idf.of(w) >= level}
    rare_b = {w for w in b if idf.of(w) >= level}
    return bool(rare_a - rare_b) and bool(rare_b - rare_a) and not rare_a & rare_b


def match_score(a: frozenset[str], b: frozenset[str], idf: Idf, params: StoryParams) -> float:
    """How alike two items' texts are for clustering (0 when their names conflict)."""
    return 0.0 if names_conflict(a, b, idf, params.rare) else similarity(a, b, idf)


def label_group(label: str) -> str:
    return label


@dataclass(frozen=True)
class Member:
    """An item as clustering sees it."""

    item_id: int
    published: datetime
    label: str
    confidence: float
    theatres: tuple[str, ...]
    words: frozenset[str]


def _time_order(member: Member) -> tuple[datetime, int]:
    return member.published, member.item_id


@dataclass
class Cluster:
    """A story being built: ``story_id`` is None until stored."""

    story_id: int | None
    first: datetime
    group: str
    theatres: set[str]
    members: list[Member] = field(default_factory=list)

    def accepts(self, item: Member, params: StoryParams) -> bool:
        if label_group(item.label) != self.group:
            return False
        if bool(self.theatres) != bool(item.theatres) or (self.theatres and not self.theatres & set(item.theatres)):
            return False
        return self.first - params.lead <= item.published <= self.first + params.window

    def closeness(self, item: Member, idf: Idf, params: StoryParams) -> float:
        leaders = self.members[: params.leaders]
        return max((match_score(item.words, m.words, idf, params) for m in leaders), default=0.0)

    def add(self, item: Member) -> int:
        """Take in a member, keeping members in time order (as a reload from the database has them, so
        every process sees the same leaders); return its position."""
        position = bisect.bisect_right(self.members, (item.published, item.item_id), key=_time_order)
        self.members.insert(position, item)
        self.theatres.update(item.theatres)
        self.first = min(self.first, item.published)
        return position


class ClusterIndex:
    """The clusters of a time span, findable by the rarer words of their first reports.

    Matching needs shared weight, and weight lives in the rarer words, so an item is compared only
    with the clusters that share one of its rarer words: cost grows with the matches, not with every
    story of the window.
    """

    def __init__(
        self, clusters: Sequence[Cluster], idf: Idf, params: StoryParams, start: datetime, end: datetime
    ) -> None:
        self.idf, self.params, self.start, self.end = idf, params, start, end
        self.clusters: list[Cluster] = []
        self._by_word: dict[str, list[Cluster]] = {}
        self._by_story: dict[int, Cluster] = {}
        self._words: dict[int, set[str]] = {}  # id(cluster) -> the words it is indexed under
        self._rank: dict[int, int] = {}  # id(cluster) -> order of arrival, so ties between stories are stable
        self._arrivals = itertools.count()
        for cluster in clusters:
            self.add(cluster)

    def covers(self, start: datetime, end: datetime) -> bool:
        return self.start <= start and end <= self.end

    def keys(self, words: frozenset[str]) -> set[str]:
        level = self.idf.unseen * self.params.index_level
        return {w for w in words if self.idf.of(w) >= level}

    def add(self, cluster: Cluster) -> None:
        self.clusters.append(cluster)
        self._rank[id(cluster)] = next(self._arrivals)
        if cluster.story_id is not None:
            self._by_story[cluster.story_id] = cluster
        for member in cluster.members[: self.params.leaders]:
            self._index(cluster, member)

    def register(self, cluster: Cluster) -> None:
        """Note the story id a new cluster got when it was stored."""
        if cluster.story_id is not None:
            self._by_story[cluster.story_id] = cluster

    def replace(self, cluster: Cluster) -> None:
        """Put a freshly loaded cluster in place of the one with its story id (or add it)."""
        old = self._by_story.pop(cluster.story_id, None) if cluster.story_id is not None else None
        if old is not None:
            self.clusters = [c for c in self.clusters if c is not old]
            self._rank.pop(id(old), None)
            for word in self._words.pop(id(old), set()):
                self._by_word[word] = [c for c in self._by_word[word] if c is not old]
        self.add(cluster)

    def update(self, story_id: int, group: str, members: Sequence[Member]) -> bool:
        """Take in memberships of a cached story written elsewhere (new members, or members whose label
        changed); False when the story is not cached here."""
        cluster = self._by_story.get(story_id)
        if cluster is None:
            return False
        fresh = {m.item_id: m for m in members}
        replaced = fresh.keys() & {m.item_id for m in cluster.members}  # relabelled or re-placed members
        merged = [m for m in cluster.members if m.item_id not in replaced] + list(fresh.values())
        merged.sort(key=_time_order)
        leaders = self.params.leaders
        same_leaders = [m.item_id for m in merged[:leaders]] == [m.item_id for m in cluster.members[:leaders]]
        if same_leaders and not replaced:  # only new members behind the leaders: its words and first time stand
            cluster.members, cluster.group = merged, group
            cluster.theatres.update(t for m in fresh.values() for t in m.theatres)
        else:
            first = merged[0].published if merged else cluster.first
            self.replace(Cluster(story_id, first, group, {t for m in merged for t in m.theatres}, merged))
        return True

    def _index(self, cluster: Cluster, member: Member) -> None:
        words = self._words.setdefault(id(cluster), set())
        for word in self.keys(member.words):
            bucket = self._by_word.setdefault(word, [])
            if not bucket or bucket[-1] is not cluster:
                bucket.append(cluster)
            words.add(word)

    def candidates(self, item: Member) -> list[Cluster]:
        """Clusters sharing a rarer word with the item, oldest first (not in the hash order of its words)."""
        seen: dict[int, Cluster] = {}
        for word in self.keys(item.words):
            for cluster in self._by_word.get(word, ()):
                seen.setdefault(id(cluster), cluster)
        return sorted(seen.values(), key=lambda cluster: self._rank[id(cluster)])

    def grow(self, cluster: Cluster, item: Member) -> None:
        if cluster.add(item) < self.params.leaders:  # a new leader: findable by its words too
            self._index(cluster, item)


def assign(items: Sequence[Member], index: ClusterIndex) -> dict[int, Cluster]:
    """Attach each item to the closest acceptable cluster, or start a new one; returns item id -> cluster."""
    params, idf = index.params, index.idf
    placed: dict[int, Cluster] = {}
    for item in sorted(items, key=lambda m: (m.published, m.item_id)):
        best, best_score = None, params.threshold
        for cluster in index.candidates(item):
            if cluster.accepts(item, params):
                score = cluster.closeness(item, idf, params)
                if score >= best_score:
                    best, best_score = cluster, score
        if best is None:
            best = Cluster(None, item.published, label_group(item.label), set(item.theatres))
            index.add(best)
        index.grow(best, item)
        placed[item.item_id] = best
    return placed


def lead_member(members: Sequence[Member]) -> Member:
    """The member the model was surest of (ties: the earliest): it gives a story its label and title.

    Two linear passes without a per-member key tuple: stories can hold thousands of members and this
    runs for every story a batch touches."""
    top = max(m.confidence for m in members)
    return min((m for m in members if m.confidence == top), key=lambda m: (m.published, m.item_id))


# ----------------------------------------------------------------------------- running tallies

_NUMBER = r"(?P<n>\d{1,3}(?:,\d{3})*|\d+)"
_UNIT = r"(?P<what>(?:(?:drone|rocket|missile|militia|houthi|separate)\s+)?(?:attacks|strikes|assaults|incidents))"
_STOP_TARGET = r"(?!\s+(?:since|in|pass|top|reach|exceed|have|has)\b)"
_TARGET = rf"(?:\s+(?:on|against|targeting)\s+(?P<target>(?:{_STOP_TARGET}[^,.;:()]){{2,60}}))?"
_SINCE = r"(?:\s+since\s+(?P<since>(?:mid-|early\s+|late\s+)?[A-Za-z]+(?:\s+\d{1,2})?|\d{1,2}\s+[A-Za-z]+))?"
_CARDINAL = re.compile(rf"\b{_NUMBER}\s+{_UNIT}{_TARGET}{_SINCE}", re.I)
_VERB = (
    r"(?:pass(?:es|ed)?|tops?|topped|reach(?:es|ed)?|exceed(?:s|ed)?|surpass(?:es|ed)?|hit|near(?:s|ed)?|"
    r"climb(?:s|ed)? to|ris(?:e|es|en) to|rose to|stands? at|now number|number)"
)
_COUNT_AFTER = re.compile(
    rf"\b{_UNIT}{_TARGET}(?:\s+in\s+[A-Z][\w -]{{2,40}}?)?\s+{_VERB}\s+"
    rf"(?:more than\s+|over\s+|nearly\s+)?{_NUMBER}{_SINCE}",
    re.I,
)
_RUNNING = re.compile(r"\b(since|so far|to date|in total|tally|cumulative|this year|running total)\b", re.I)
_ORDINAL = re.compile(r"\b(?P<n>\d+)(?:st|nd|rd|th)\s+(?P<what>(?:drone\s+|rocket\s+)?(?:attack|strike))\b", re.I)


@dataclass(frozen=True)
class Tally:
    """A running total an item reports: "more than 150 attacks on US forces since mid-October"."""

    number: int
    what: str
    target: str
    since: str
    ordinal: bool
    in_title: bool
    cumulative: bool  # worded as a running total (since a date, "so far", "pass 100"), not one barrage


def find_tally(title: str, summary: str) -> Tally | None:
    """The largest cumulative count in the item (title first, its since-date completed from the summary)."""
    in_title, in_summary = _tallies_in(title, True), _tallies_in(summary, False)
    if not in_title:
        return in_summary
    if in_summary and not in_title.since and in_summary.number == in_title.number:
        return replace(in_title, since=in_summary.since, target=in_title.target or in_summary.target)
    return in_title


def _tallies_in(text: str, in_title: bool) -> Tally | None:
    running = bool(_RUNNING.search(text))
    found = [_tally(m, False, in_title, running) for m in _CARDINAL.finditer(text)]
    found += [_tally(m, False, in_title, True) for m in _COUNT_AFTER.finditer(text)]
    found += [_tally(m, True, in_title, True) for m in _ORDINAL.finditer(text)]
    found = [t for t in found if t.number >= 5]
    return max(found, key=lambda t: (not t.ordinal, t.number)) if found else None


def _tally(match: re.Match[str], ordinal: bool, in_title: bool, running: bool) -> Tally:
    groups = match.groupdict()
    number = int(groups["n"].replace(",", ""))
    since = (groups.get("since") or "").strip()
    target = (groups.get("target") or "").strip()
    return Tally(number, groups["what"].lower(), target, since, ordinal, in_title, running or bool(since))


def is_tally_item(tally: Tally | None) -> bool:
    """A headline about a cumulative count (not an ordinal tag on a new attack) reports no new act."""
    return tally is not None and tally.in_title and tally.cumulative and not tally.ordinal


# ----------------------------------------------------------------------------- retaliation chains


@dataclass(frozen=True)
class StorySketch:
    """A stored story as the chain finder sees it."""

    story_id: int
    first: datetime
    label: str
    theatres: frozenset[str]
    words: frozenset[str]


@dataclass(frozen=True)
class Link:
    retaliation_id: int
    attack_id: int
    lag_hours: float
    score: float


def chain_links(
    retaliation: StorySketch,
    attacks: Sequence[StorySketch],
    idf: Idf,
    horizon: timedelta = timedelta(days=14),
    keep: int = 3,
    min_shared: float = 4.0,
) -> list[Link]:
    """Attack stories in the same theatre in the ``horizon`` before a retaliation that it plausibly answers.

    Plausible: they share named actors or places (rare words, weighted by IDF, at least ``min_shared``);
    nearest in time first, at most ``keep``.
    """
    candidates = []
    for attack in attacks:
        lag = retaliation.first - attack.first
        if attack.label != "attack" or not (timedelta(0) <= lag <= horizon):
            continue
        if retaliation.theatres and not retaliation.theatres & attack.theatres:
            continue
        shared = sum(idf.of(w) for w in retaliation.words & attack.words if idf.of(w) >= idf.unseen * 0.5)
        if shared >= min_shared:
            candidates.append(
                Link(retaliation.story_id, attack.story_id, round(lag.total_seconds() / 3600, 1), round(shared, 2))
            )
    return sorted(candidates, key=lambda link: (link.lag_hours, -link.score))[:keep]


def day_of(moment: datetime, zone: object) -> date:
    """The calendar day of ``moment`` in ``zone`` (a tzinfo)."""
    return moment.astimezone(zone).date()  # type: ignore[arg-type]
