"""Jira issue types kept as a RAID log: risks and project issues instead of tasks.

A site configures which issue types are risks (``risk_issue_types = ["Risk"]``) and which are issues
(``issue_issue_types = ["Issue"]``), and the names of the fields holding a risk's probability, impact,
mitigation and review date (``raid_fields``), as users see them: names are resolved to the site's custom
field ids (``GET /field``) on each run, so the configuration survives a field being re-created. Those
types become ``Risk`` / ``ProjectIssue`` records in their own streams (``risks``, ``raid_issues``), each
with its own watermark, and leave the scope of the task streams, so an entry is never a task too.

Probability and impact may be select options ("High", "4 - High"), numbers 1–5 or percentages; they are
put on the PMO's 1–5 scale by ``model.raid.level``. Owner: the assignee. Review date of a risk: its
review-date field; due date of an issue: Jira's ``duedate``. A done status category closes the entry.
Each run ends with an id listing of its types in scope; an entry no longer listed is marked deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from connectors.base import Page, SourceError, StreamState
from connectors.jira import mapping as M
from connectors.jira.client import JiraClient, Tally
from connectors.jira.streams import ID_PAGE, ISSUE_PAGE, _JiraStream, _known, _map_each
from model.raid import level, priority, score
from model.records import ProjectIssue, Record, Risk

BASE_FIELDS = [
    "summary", "status", "assignee", "project", "created", "updated", "resolutiondate", "duedate",
    "priority", "description",
]  # fmt: skip
RISK_FIELDS = ("probability", "impact", "mitigation", "review_date")


@dataclass(frozen=True)
class RaidTypes:
    """Which issue types are risks and issues on a site, and the names of a risk's fields."""

    risks: tuple[str, ...] = ()
    issues: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(
        default_factory=lambda: {
            "probability": "Probability",
            "impact": "Impact",
            "mitigation": "Mitigation",
            "review_date": "Review Date",
        }
    )

    def scope(self, scope: str, types: Sequence[str], keep: bool) -> str:
        """``scope`` narrowed to the issues of ``types`` (``keep``) or to every other issue."""
        names = ", ".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in types)
        return f"({scope}) AND issuetype {'in' if keep else 'not in'} ({names})"


def field_ids(client: JiraClient, names: Mapping[str, str], tally: Tally) -> dict[str, str]:
    """Our field (probability, …) → the site's field id, by the field's name; a name the site lacks is a
    one-line error naming it and the fields it has, rather than risks silently without probability."""
    fields = client.listed("GET", f"{client.api}/field", tally=tally)
    by_name: dict[str, list[str]] = {}
    for f in fields:
        if f.get("name") and f.get("id"):
            by_name.setdefault(str(f["name"]).strip().casefold(), []).append(str(f["id"]))
    out, missing = {}, []
    for ours, name in names.items():
        ids = by_name.get(name.strip().casefold(), [])
        if len(ids) != 1:
            missing.append(f"{name!r} ({'ambiguous: ' + ', '.join(ids) if ids else 'no such field'})")
        else:
            out[ours] = ids[0]
    if missing:
        custom = sorted(str(f.get("name")) for f in fields if f.get("custom"))
        raise SourceError(
            f"{client.source}: raid_fields {', '.join(missing)}; the site's custom fields: {custom}"
        )
    return out


def _fields(issue: Mapping[str, Any]) -> Mapping[str, Any]:
    if not issue.get("id"):
        raise M.Unmappable("id", "the issue has no id")
    f = issue.get("fields")
    if not isinstance(f, Mapping) or not f:
        raise M.Unmappable("fields", "the issue came without its fields")
    return f


def _level(f: Mapping[str, Any], fid: str | None, name: str) -> Any:
    try:
        return level(M.simple(f.get(fid))) if fid else None
    except ValueError as e:
        raise M.Unmappable(name, str(e)) from None


def _text(value: Any) -> str | None:
    text = M.simple(value)
    return None if text is None else str(text)


def _common(issue: Mapping[str, Any], f: Mapping[str, Any], source: str) -> dict[str, Any]:
    status = f.get("status") or {}
    done = (status.get("statusCategory") or {}).get("key") == "done"
    created = M.parse_time(f.get("created"))
    return dict(
        source=source,
        source_id=str(issue["id"]),
        project_source_id=str((f.get("project") or {}).get("id")) if f.get("project") else None,
        key=issue.get("key"),
        title=f.get("summary"),
        description=_text(f.get("description")),
        owner_source_id=M.person_id(f.get("assignee")),
        status=status.get("name"),
        status_category="closed" if done else "open",
        raised_date=created.date() if created else None,
        source_updated_at=M.parse_time(f.get("updated")),
    )


def risk(issue: Mapping[str, Any], source: str, ids: Mapping[str, str]) -> Risk:
    f = _fields(issue)
    p, i = _level(f, ids.get("probability"), "probability"), _level(f, ids.get("impact"), "impact")
    resolved = M.parse_time(f.get("resolutiondate"))
    review = ids.get("review_date")
    return Risk(
        **_common(issue, f, source),
        probability=p,
        impact=i,
        score=score(p, i),
        review_date=M.parse_date(f.get(review)) if review else None,
        closed_date=resolved.date() if resolved else None,
        mitigation=_text(f.get(ids["mitigation"])) if "mitigation" in ids else None,
    )


def project_issue(issue: Mapping[str, Any], source: str) -> ProjectIssue:
    f = _fields(issue)
    resolved = M.parse_time(f.get("resolutiondate"))
    name = (f.get("priority") or {}).get("name")
    try:
        level_ = priority(name)
    except ValueError:
        level_ = None  # a site's own priority scheme: the entry still counts, unranked
    return ProjectIssue(
        **_common(issue, f, source),
        priority=level_,
        due_date=M.parse_date(f.get("duedate")),
        resolved_date=resolved.date() if resolved else None,
    )


@dataclass
class _RaidStream(_JiraStream):
    """Entries of the RAID issue types in scope (``scope`` already narrowed to them), incremental on
    ``updated`` like the issues stream, then an id listing that retires entries no longer there."""

    raid: RaidTypes = field(default_factory=RaidTypes)
    entity: ClassVar[str]

    def prepare(self, tally: Tally) -> tuple[Callable[[Mapping[str, Any]], Record], list[str]]:
        """The mapping of one issue, and the fields it reads besides ``BASE_FIELDS``."""
        raise NotImplementedError

    def read(self, state: StreamState) -> Iterator[Page]:
        tally = Tally()
        since, until, after_id = self._window(state)
        known = _known(state, self.entity)  # before the scan: whatever is stored before it must show up
        c = self.client
        to_record, extra = self.prepare(tally)
        fields = BASE_FIELDS + extra
        for issues in c.search(self._jql(since, after_id, tally), fields, ISSUE_PAGE, tally):
            records, rejected = _map_each(issues, lambda i: [to_record(i)], self.source, self.entity)
            last = max((int(i["id"]) for i in issues if str(i.get("id")).isdigit()), default=after_id)
            yield Page(records, rejected, watermark=self._mark(since, until, last), requests=tally.take())
        listed = {
            str(i["id"])
            for page in c.search(self._jql(None), ["id"], ID_PAGE, tally)
            for i in page
            if i.get("id")
        }
        gone = sorted(known - listed)
        state.check_deletions(f"{self.source}/{self.name}", self.entity, len(gone), len(known))
        yield Page(
            deleted={self.entity: gone} if gone else {},
            watermark=self._mark(since, until, None),
            requests=tally.take(),
        )


@dataclass
class RisksStream(_RaidStream):
    name = "risks"
    entity = "risk"

    def prepare(self, tally: Tally) -> tuple[Callable[[Mapping[str, Any]], Record], list[str]]:
        ids = field_ids(self.client, self.raid.fields, tally)  # each run: a re-created field keeps its name
        return (lambda issue: risk(issue, self.source, ids)), sorted(set(ids.values()))


@dataclass
class RaidIssuesStream(_RaidStream):
    name = "raid_issues"
    entity = "project_issue"

    def prepare(self, tally: Tally) -> tuple[Callable[[Mapping[str, Any]], Record], list[str]]:
        return (lambda issue: project_issue(issue, self.source)), []


RAID_STREAMS = ("risks", "raid_issues")


def raid_streams(common: dict[str, Any], types: RaidTypes, scope: str) -> list[_RaidStream]:
    """The RAID streams of a site's configured issue types, each scoped to its types."""
    out: list[_RaidStream] = []
    if types.risks:
        out.append(RisksStream(**common, scope=types.scope(scope, types.risks, True), raid=types))
    if types.issues:
        out.append(RaidIssuesStream(**common, scope=types.scope(scope, types.issues, True), raid=types))
    return out
