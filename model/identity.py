"""Identity matching: which records from different tools are the same project, person or task.

Pure logic, no I/O. The warehouse hands in candidates (one per source record) plus rule links and human
decisions; ``match`` returns clusters (one per real-world thing) and the pairs a human should review.

Precedence is manual > key > rule > fuzzy, applied in that order, so a weaker method can never undo a
stronger one. A cluster holds at most one record per source (a Jira site, a tenant, an ERP): that is what
makes matching one-to-one; a source whose records are unique only within a part of it (each project
file's resource pool) names that part as the candidate's ``pool``. Fuzzy names only compare records inside
a block (same cost centre, overlapping dates, where both sides know them), and names whose numbers or
codes differ never match: "Data Platform 2024" is not "Data Platform 2025", "Mobile App v2" is not "v3".
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz import fuzz, process

Ref = tuple[str, str]  # (source, source_id)

_FOLD = str.maketrans({"ß": "ss", "ø": "o", "Ø": "o", "ı": "i", "ł": "l", "Ł": "l", "æ": "ae", "œ": "oe"})
_PARENS = re.compile(r"\([^)]*\)|\[[^]]*\]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_CODED = re.compile(r"\b\w*\d\w*\b")


def fold(text: str) -> str:
    """Lower case without accents: "Chloé Müller" -> "chloe muller"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def normalise_name(name: str | None) -> str:
    """Comparable name: folded, parenthesised notes dropped ("(Contractor)"), punctuation to spaces."""
    if not name:
        return ""
    return " ".join(_NON_WORD.sub(" ", fold(_PARENS.sub(" ", name))).split())


def normalise_email(email: str | None) -> str | None:
    email = (email or "").strip().casefold()
    return email if "@" in email else None


def numbers(normalised: str) -> frozenset[str]:
    """The tokens holding a digit ("2025", "v2", "p 1001"): they must agree exactly for a fuzzy match."""
    return frozenset(_CODED.findall(normalised))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One source record as matching sees it."""

    ref: Ref
    name: str | None = None
    keys: frozenset[str] = frozenset()  # exact identifiers: codes, e-mails, employee numbers
    cost_centre: str | None = None
    start: date | None = None
    finish: date | None = None
    pool: str | None = None  # where records are one per real thing, when narrower than the source

    @property
    def scope(self) -> str:
        """Where a real thing has at most one record: the source, or e.g. one project file's resource pool."""
        return self.pool or self.ref[0]


@dataclass(frozen=True, slots=True)
class Link:
    a: Ref
    b: Ref
    method: str
    confidence: float
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A human's verdict on a pair: the same thing, or two different things. Survives every run."""

    a: Ref
    b: Ref
    same: bool


@dataclass(frozen=True, slots=True)
class Thresholds:
    accept: float = 95.0  # a unique fuzzy match at or above this is accepted without review
    review: float = 80.0  # from here up to accept: a human decides; below: rejected


@dataclass(frozen=True, slots=True)
class Member:
    ref: Ref
    method: str | None  # how it joined its cluster; None for a record nothing else matched
    confidence: float | None
    matched_to: Ref | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Review:
    """A pair matching could not decide: ``ref`` probably belongs with ``candidate``."""

    ref: Ref
    candidate: Ref
    score: float
    reason: str


@dataclass
class Matching:
    clusters: list[list[Member]] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)


class _Clusters:
    """Union-find that refuses merges putting two records of one source together or a vetoed pair."""

    def __init__(self, scopes: dict[Ref, str], distinct: set[frozenset[Ref]]) -> None:
        self.parent = {r: r for r in scopes}
        self.sources = {r: {scope} for r, scope in scopes.items()}
        self.members = {r: [r] for r in self.parent}
        self.distinct = distinct
        self.joined: dict[Ref, Link] = {}

    def root(self, r: Ref) -> Ref:
        while self.parent[r] != r:
            self.parent[r] = self.parent[self.parent[r]]
            r = self.parent[r]
        return r

    def allowed(self, a: Ref, b: Ref, one_per_source: bool = True) -> bool:
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return False
        if one_per_source and self.sources[ra] & self.sources[rb]:
            return False
        return not any(frozenset((x, y)) in self.distinct for x in self.members[ra] for y in self.members[rb])

    def join(self, link: Link, one_per_source: bool = True) -> bool:
        if not self.allowed(link.a, link.b, one_per_source):
            return False
        ra, rb = sorted((self.root(link.a), self.root(link.b)))
        self.parent[rb] = ra
        self.sources[ra] |= self.sources.pop(rb)
        self.members[ra] += self.members.pop(rb)
        for r in (link.a, link.b):
            self.joined.setdefault(r, link)
        return True


def match(
    candidates: Sequence[Candidate],
    rules: Iterable[Link] = (),
    decisions: Iterable[Decision] = (),
    thresholds: Thresholds = Thresholds(),
    fuzzy: bool = True,
) -> Matching:
    """Cluster ``candidates``: manual decisions, then shared keys, then ``rules``, then fuzzy names."""
    by_ref = {c.ref: c for c in sorted(candidates, key=lambda c: c.ref)}
    decisions = list(decisions)
    distinct = {frozenset((d.a, d.b)) for d in decisions if not d.same}
    cl = _Clusters({ref: c.scope for ref, c in by_ref.items()}, distinct)

    for d in decisions:  # a human may put two records of one source together; nothing else may
        if d.same and d.a in by_ref and d.b in by_ref:
            cl.join(Link(d.a, d.b, "manual", 100.0, "decided by a person"), one_per_source=False)

    holders: dict[str, list[Ref]] = defaultdict(list)
    for ref, c in by_ref.items():
        for k in c.keys:
            holders[k].append(ref)
    for k in sorted(holders):
        refs = holders[k]
        for other in refs[1:]:
            cl.join(Link(refs[0], other, "key", 100.0, f"same key {k}"))

    for link in sorted(rules, key=lambda lk: (-lk.confidence, lk.a, lk.b)):
        if link.a in by_ref and link.b in by_ref:
            cl.join(link)

    reviews = _fuzzy(by_ref, cl, thresholds) if fuzzy else []

    out = Matching(reviews=reviews)
    for root in sorted(cl.members):
        members = []
        for ref in sorted(cl.members[root]):
            lk = cl.joined.get(ref)
            if lk is None:
                members.append(Member(ref, None, None, None, None))
            else:
                other = lk.b if lk.a == ref else lk.a
                members.append(Member(ref, lk.method, lk.confidence, other, lk.reason))
        out.clusters.append(members)
    return out


def _block_ok(a: Candidate, b: Candidate) -> bool:
    """Blocks for fuzzy names: cost centres and date ranges must agree where both sides know them."""
    if a.cost_centre and b.cost_centre and a.cost_centre != b.cost_centre:
        return False
    if a.start and a.finish and b.start and b.finish:
        return a.start <= b.finish and b.start <= a.finish
    return True


def _fuzzy(by_ref: dict[Ref, Candidate], cl: _Clusters, th: Thresholds) -> list[Review]:
    """Match records still alone against every cluster by name; accept only unique, strong matches."""
    named = [(ref, normalise_name(c.name)) for ref, c in by_ref.items() if normalise_name(c.name)]
    if not named:
        return []
    lonely = [(ref, n) for ref, n in named if len(cl.members[cl.root(ref)]) == 1]
    if not lonely:
        return []
    names = [n for _, n in named]
    scores = process.cdist(
        [n for _, n in lonely], names, scorer=fuzz.WRatio, score_cutoff=th.review, workers=-1
    )
    # Each lonely record's best score per cluster.
    proposals: dict[Ref, dict[Ref, tuple[float, Ref]]] = {}
    for i, (ref, name) in enumerate(lonely):
        me = by_ref[ref]
        mine = numbers(name)
        best: dict[Ref, tuple[float, Ref]] = {}
        for j in scores[i].nonzero()[0]:
            other, other_name = named[j]
            root = cl.root(other)
            if other == ref or not cl.allowed(ref, other):
                continue
            if numbers(other_name) != mine or not _block_ok(me, by_ref[other]):
                continue
            s = float(scores[i][j])
            if s > best.get(root, (0.0, other))[0]:
                best[root] = (s, other)
        if best:
            proposals[ref] = best

    # Who competes for a cluster: lonely records of one source scoring >= accept for it.
    claims: dict[tuple[Ref, str], list[Ref]] = defaultdict(list)
    for ref, best in proposals.items():
        for root, (s, _) in best.items():
            if s >= th.accept:
                claims[(root, by_ref[ref].scope)].append(ref)

    reviews: list[Review] = []
    asked: set[frozenset[Ref]] = set()
    accepted: list[Link] = []
    for ref in sorted(proposals):
        best = proposals[ref]
        strong = [(s, o, root) for root, (s, o) in best.items() if s >= th.accept]
        if len(strong) == 1 and claims[(strong[0][2], by_ref[ref].scope)] == [ref]:
            s, other, _ = strong[0]
            accepted.append(Link(ref, other, "fuzzy", s, f"name {s:.0f}% like {by_ref[other].name!r}"))
            continue
        why = "not unique" if strong else "below the accept threshold"
        for _root, (s, other) in sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1])):
            if frozenset((ref, other)) not in asked:  # two lonely records propose each other: ask once
                asked.add(frozenset((ref, other)))
                reviews.append(Review(ref, other, s, f"name {s:.0f}% like {by_ref[other].name!r}; {why}"))
    for link in sorted(accepted, key=lambda lk: (-lk.confidence, lk.a)):
        if cl.root(link.a) == cl.root(link.b):
            continue  # two lonely records that chose each other
        if not cl.join(link):  # an earlier accept took the slot: a human decides
            reviews.append(Review(link.a, link.b, link.confidence, link.reason + "; slot taken"))
    return reviews
