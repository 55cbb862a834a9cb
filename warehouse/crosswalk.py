"""Crosswalks: read matching candidates out of the warehouse, write the matching back as ``*_xref`` rows.

Finance exports have no project or person master, only codes on cost lines; each distinct project code
and personnel number becomes a candidate of its own (source = the finance source, source_id = the code),
so "which project is P-1004" and "who is 00010017" are answered the same way as for Jira or Project.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from model.identity import (
    Candidate,
    Decision,
    Link,
    Matching,
    Ref,
    Review,
    normalise_email,
    normalise_name,
)
from model.recon import system_of
from warehouse.schema import ENTITY_TABLES, XREF_TABLES, mapping_decision, mapping_review

project, person, task, cost_line, budget = (
    ENTITY_TABLES[n] for n in ("project", "person", "task", "cost_line", "budget")
)
ISSUE_KEY = re.compile(r"^\s*\[?([A-Z][A-Z0-9]+-\d+)\]?[\s:]")
LEADING_CODE = re.compile(r"^\s*([A-Z][A-Z0-9]*-\d+)\s")


def issue_key(source: str, key: str | None, name: str | None) -> str | None:
    """The Jira issue key a task carries: its own key in Jira, a "KEY-12 " name prefix elsewhere."""
    if system_of(source) == "jira":
        return key
    m = ISSUE_KEY.match((name or "") + " ")
    return m.group(1) if m else None


@dataclass
class Candidates:
    """Candidates of one entity plus what reporting needs about each (name, key, e-mail)."""

    items: list[Candidate]
    labels: dict[Ref, tuple[str | None, str | None]]  # ref -> (key, name)


def project_candidates(conn: Connection) -> Candidates:
    items, labels = [], {}
    rows = conn.execute(
        select(
            project.c.source, project.c.source_id, project.c.key, project.c.name, project.c.wbs_code,
            project.c.cost_centre, project.c.start_date, project.c.finish_date,
        ).where(project.c.deleted_at.is_(None))
    )  # fmt: skip
    for r in rows:
        keys = {k.strip().upper() for k in (r.key, r.wbs_code) if k and k.strip()}
        m = LEADING_CODE.match((r.name or "") + " ")
        if m:
            keys.add(m.group(1))
        name = r.name[m.end() :] if m and r.name else r.name
        ref = (r.source, r.source_id)
        items.append(Candidate(ref, name, frozenset(keys), r.cost_centre, r.start_date, r.finish_date))
        labels[ref] = (r.key or (m.group(1) if m else None), r.name)
    for r in _finance_project_codes(conn):
        ref = (r.source, r.code)
        items.append(
            Candidate(ref, None, frozenset({r.code.strip().upper()}), r.cost_centre, r.first, r.last)
        )
        labels[ref] = (r.code, None)
    return Candidates(items, labels)


def _finance_project_codes(conn: Connection) -> list[Any]:
    """Distinct project codes of finance sources, with a cost centre and the range of postings."""
    lines = (
        select(
            cost_line.c.source,
            cost_line.c.project_code.label("code"),
            func.min(cost_line.c.posting_date).label("first"),
            func.max(cost_line.c.posting_date).label("last"),
        )
        .where(cost_line.c.project_code.is_not(None), cost_line.c.deleted_at.is_(None))
        .group_by(cost_line.c.source, cost_line.c.project_code)
    )
    budgets = (
        select(
            budget.c.source, budget.c.project_code.label("code"), func.min(budget.c.cost_centre).label("cc")
        )
        .where(budget.c.project_code.is_not(None), budget.c.deleted_at.is_(None))
        .group_by(budget.c.source, budget.c.project_code)
    )
    found: dict[Ref, dict[str, Any]] = {}
    for r in conn.execute(lines):
        found[(r.source, r.code)] = {"first": r.first, "last": r.last, "cost_centre": None}
    for r in conn.execute(budgets):
        found.setdefault((r.source, r.code), {"first": None, "last": None})["cost_centre"] = r.cc
    return [_Row(source=s, code=c, **v) for (s, c), v in sorted(found.items())]


def _pool(ref: Ref) -> str | None:
    """Project files each carry their own resource pool ("<project guid>:R<uid>"): one person per file;
    a Planner premium plan's team members are its pool ("<member>:<plan>")."""
    if system_of(ref[0]) == "projectfiles" and ":" in ref[1]:
        return f"{ref[0]}/{ref[1].split(':', 1)[0]}"
    if system_of(ref[0]) == "dataverse" and ":" in ref[1]:
        return f"{ref[0]}/{ref[1].split(':', 1)[1]}"
    return None


class _Row:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def person_candidates(conn: Connection) -> Candidates:
    items, labels = [], {}
    rows = conn.execute(
        select(
            person.c.source, person.c.source_id, person.c.display_name, person.c.email, person.c.account_id,
            person.c.employee_number, person.c.cost_centre,
        ).where(person.c.deleted_at.is_(None))
    )  # fmt: skip
    for r in rows:
        keys = {e for e in (normalise_email(r.email), normalise_email(r.account_id)) if e}
        if r.employee_number and r.employee_number.strip():
            keys.add("emp:" + r.employee_number.strip())
        ref = (r.source, r.source_id)
        items.append(Candidate(ref, r.display_name, frozenset(keys), r.cost_centre, pool=_pool(ref)))
        labels[ref] = (normalise_email(r.email) or r.employee_number, r.display_name)
    codes = (
        select(cost_line.c.source, cost_line.c.person_code)
        .where(cost_line.c.person_code.is_not(None), cost_line.c.deleted_at.is_(None))
        .group_by(cost_line.c.source, cost_line.c.person_code)
    )
    for r in conn.execute(codes):
        ref = (r.source, r.person_code)
        items.append(Candidate(ref, None, frozenset({"emp:" + r.person_code.strip()})))
        labels[ref] = (r.person_code, None)
    return Candidates(items, labels)


def task_candidates(conn: Connection) -> Candidates:
    items, labels = [], {}
    rows = conn.execute(
        select(task.c.source, task.c.source_id, task.c.key, task.c.name).where(task.c.deleted_at.is_(None))
    )
    for r in rows:
        key = issue_key(r.source, r.key, r.name)
        ref = (r.source, r.source_id)
        items.append(Candidate(ref, r.name, frozenset({"issue:" + key}) if key else frozenset()))
        labels[ref] = (key, r.name)
    return Candidates(items, labels)


def project_rules(conn: Connection) -> list[Link]:
    """A project whose tasks mostly carry one Jira project's issue keys is that Jira project."""
    jira = defaultdict(list)
    for r in conn.execute(select(project.c.source, project.c.source_id, project.c.key)):
        if system_of(r.source) == "jira" and r.key:
            jira[r.key.upper()].append((r.source, r.source_id))
    prefixes: dict[Ref, Counter[str]] = defaultdict(Counter)
    rows = conn.execute(
        select(task.c.source, task.c.project_source_id, task.c.name).where(
            task.c.deleted_at.is_(None), task.c.project_source_id.is_not(None)
        )
    )
    for r in rows:
        if system_of(r.source) == "jira":
            continue
        key = issue_key(r.source, None, r.name)
        if key:
            prefixes[(r.source, r.project_source_id)][key.rsplit("-", 1)[0]] += 1
    links = []
    for ref, counts in sorted(prefixes.items()):
        (prefix, n), total = counts.most_common(1)[0], sum(counts.values())
        if n >= 2 and n * 2 > total:
            for jref in jira.get(prefix, ()):
                share = round(100 * n / total, 2)
                links.append(
                    Link(ref, jref, "rule", share, f"{n} of {total} tasks carry {prefix} issue keys")
                )
    return links


def person_rules(items: Sequence[Candidate]) -> list[Link]:
    """Account and name: the same normalised full name, unique within each source, is the same person."""
    by_name: dict[str, dict[str, list[Ref]]] = defaultdict(lambda: defaultdict(list))
    for c in items:
        n = normalise_name(c.name)
        if n and " " in n:  # a single word is no name to match on
            by_name[" ".join(sorted(n.split()))][c.scope].append(c.ref)
    links = []
    for name, per_source in sorted(by_name.items()):
        unique = sorted(refs[0] for refs in per_source.values() if len(refs) == 1)
        for other in unique[1:]:
            links.append(Link(unique[0], other, "rule", 90.0, f"same name {name!r}, unique in each source"))
    return links


def decisions(conn: Connection, entity: str) -> list[Decision]:
    rows = conn.execute(select(mapping_decision).where(mapping_decision.c.entity == entity))
    return [
        Decision((r.source, r.source_id), (r.other_source, r.other_source_id), r.verdict == "same")
        for r in rows
    ]


def decision_authors(conn: Connection, entity: str) -> dict[frozenset[Ref], tuple[str, datetime]]:
    rows = conn.execute(select(mapping_decision).where(mapping_decision.c.entity == entity))
    return {
        frozenset(((r.source, r.source_id), (r.other_source, r.other_source_id))): (
            r.decided_by,
            r.decided_at,
        )
        for r in rows
    }


def write_xref(conn: Connection, entity: str, matching: Matching, at: datetime) -> int:
    """Store the clusters with stable canonical ids; returns how many mappings changed.

    A cluster keeps the canonical id most of its members already had; a record that moves closes its
    old row (``valid_to``) and opens a new one, so the history of every mapping stays queryable.
    """
    xref = XREF_TABLES[entity]
    current = {
        (r.source, r.source_id): r
        for r in conn.execute(select(xref).where(xref.c.valid_to.is_(None))).mappings()
    }
    next_id = (conn.execute(select(func.max(xref.c.canonical_id))).scalar() or 0) + 1
    pending = {review.ref for review in matching.reviews}
    authors = decision_authors(conn, entity)
    taken: set[int] = set()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    closes: list[int] = []
    seen: set[Ref] = set()
    for cluster in sorted(matching.clusters, key=lambda c: (-len(c), c[0].ref)):
        had = Counter(current[m.ref]["canonical_id"] for m in cluster if m.ref in current)
        ids = [i for i, _ in sorted(had.items(), key=lambda kv: (-kv[1], kv[0])) if i not in taken]
        if ids:
            cid = ids[0]
        else:
            cid, next_id = next_id, next_id + 1
        taken.add(cid)
        for m in cluster:
            seen.add(m.ref)
            by, when = "pmo-sync", at
            status = "unmatched" if m.method is None else "auto"
            if m.method == "manual" and m.matched_to:
                by, when = authors.get(frozenset((m.ref, m.matched_to)), (by, at))
                status = "approved"
            if m.ref in pending and m.method is None:
                status = "pending"
            row = {
                "canonical_id": cid,
                "method": m.method,
                "confidence": None if m.confidence is None else round(m.confidence, 2),
                "review_status": status,
                "matched_source": m.matched_to[0] if m.matched_to else None,
                "matched_source_id": m.matched_to[1] if m.matched_to else None,
                "reason": m.reason,
            }
            old = current.get(m.ref)
            if old is None or old["canonical_id"] != cid:
                if old is not None:
                    closes.append(old["id"])
                inserts.append(
                    {**row, "source": m.ref[0], "source_id": m.ref[1], "decided_by": by, "decided_at": when,
                     "valid_from": at}
                )  # fmt: skip
            elif any(_differs(old[k], v) for k, v in row.items()):
                updates.append({**row, "b_id": old["id"], "decided_by": by, "decided_at": when})
    closes += [r["id"] for ref, r in current.items() if ref not in seen]  # the record is gone or deleted
    if closes:
        conn.execute(
            update(xref).where(xref.c.id == bindparam("b_id")).values(valid_to=at),
            [{"b_id": i} for i in closes],
        )
    if updates:
        conn.execute(update(xref).where(xref.c.id == bindparam("b_id")), updates)
    if inserts:
        conn.execute(xref.insert(), inserts)
    return len(inserts) + len(updates) + len(closes)


def _differs(old: Any, new: Any) -> bool:
    if isinstance(new, float) and old is not None:
        return abs(float(old) - new) > 0.005
    return old != new


Labels = Mapping[Ref, tuple[str | None, str | None]]


def write_reviews(
    conn: Connection, entity: str, reviews: Iterable[Review], labels: Labels, at: datetime
) -> int:
    """Keep the review queue equal to what matching could not decide; decided items stay as history."""
    existing = {
        ((r.source, r.source_id), (r.candidate_source, r.candidate_source_id)): r
        for r in conn.execute(select(mapping_review).where(mapping_review.c.entity == entity))
    }
    wanted = {(rv.ref, rv.candidate): rv for rv in reviews}
    changed = 0
    for pair, rv in sorted(wanted.items()):
        old = existing.get(pair)
        if old is None:
            conn.execute(
                mapping_review.insert().values(
                    entity=entity, source=rv.ref[0], source_id=rv.ref[1], name=_name(labels, rv.ref),
                    candidate_source=rv.candidate[0], candidate_source_id=rv.candidate[1],
                    candidate_name=_name(labels, rv.candidate), score=round(rv.score, 2),
                    reason=rv.reason, status="open", created_at=at,
                )
            )  # fmt: skip
            changed += 1
        elif old.status == "obsolete":
            conn.execute(update(mapping_review).where(mapping_review.c.id == old.id).values(status="open"))
            changed += 1
    stale = [r.id for pair, r in existing.items() if r.status == "open" and pair not in wanted]
    if stale:
        conn.execute(update(mapping_review).where(mapping_review.c.id.in_(stale)).values(status="obsolete"))
    return changed + len(stale)


def _name(labels: Labels, ref: Ref) -> str | None:
    return labels.get(ref, (None, None))[1]


def current_members(conn: Connection, entity: str) -> dict[int, list[Ref]]:
    xref = XREF_TABLES[entity]
    out: dict[int, list[Ref]] = defaultdict(list)
    rows = conn.execute(
        select(xref.c.canonical_id, xref.c.source, xref.c.source_id)
        .where(xref.c.valid_to.is_(None))
        .order_by(xref.c.canonical_id, xref.c.source, xref.c.source_id)
    )
    for r in rows:
        out[r.canonical_id].append((r.source, r.source_id))
    return out


def xref_join(entity: str, source_col: Any, id_col: Any) -> Any:
    """Join condition from a fact's (source, id) columns to the current crosswalk row."""
    xref = XREF_TABLES[entity]
    return and_(xref.c.source == source_col, xref.c.source_id == id_col, xref.c.valid_to.is_(None))


def record_decision(
    conn: Connection, entity: str, a: Ref, b: Ref, same: bool, by: str, at: datetime, note: str | None,
    origin: str,
) -> bool:  # fmt: skip
    """Store a human verdict on a pair (order-free); an older verdict never overwrites a newer one."""
    a, b = sorted((a, b))
    key = dict(entity=entity, source=a[0], source_id=a[1], other_source=b[0], other_source_id=b[1])
    old = conn.execute(select(mapping_decision).filter_by(**key)).first()
    values = dict(
        verdict="same" if same else "distinct", decided_by=by, decided_at=at, note=note, origin=origin
    )
    if old is None:
        conn.execute(mapping_decision.insert().values(**key, **values))
        return True
    if _aware(old.decided_at) >= _aware(at) or (old.verdict, old.decided_by, old.note) == (
        values["verdict"], by, note,
    ):  # fmt: skip
        return False
    conn.execute(update(mapping_decision).filter_by(**key).values(**values))
    return True


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def decide_review(
    conn: Connection, review_id: int, same: bool, by: str, at: datetime, note: str | None
) -> Any:
    """Approve (same) or reject (distinct) an open review item; the verdict becomes a manual decision."""
    item = conn.execute(select(mapping_review).where(mapping_review.c.id == review_id)).first()
    if item is None:
        raise LookupError(f"no review item {review_id}")
    if item.status != "open":
        raise LookupError(f"review item {review_id} is {item.status}, not open")
    ref, other = (item.source, item.source_id), (item.candidate_source, item.candidate_source_id)
    record_decision(conn, item.entity, ref, other, same, by, at, note, "cli")
    conn.execute(
        update(mapping_review)
        .where(mapping_review.c.id == review_id)
        .values(status="approved" if same else "rejected", decided_by=by, decided_at=at)
    )
    return item
