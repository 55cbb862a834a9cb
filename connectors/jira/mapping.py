"""Jira payloads → canonical records. Pure functions: one payload in, one record (or a Rejected) out.

Cloud and Data Center differ in who a user is (``accountId`` vs ``key``/``name``), in descriptions and
comments (ADF vs plain text) and in the sprint field (objects vs ``Sprint@..[name=..]`` strings); both
shapes are read here so the streams need not care.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from model.records import Person, Project, Rejected, StatusChange, Task, TimeEntry

CATEGORY = {"new": "todo", "indeterminate": "in_progress", "done": "done"}
HOUR = Decimal(3600)
Q = Decimal("0.0001")


@dataclass(frozen=True)
class FieldMap:
    """Which custom fields hold sprint and story points, and which extra ones go into ``Task.extra``."""

    sprint: str = "customfield_10020"
    story_points: str = "customfield_10016"
    custom: Mapping[str, str] = field(default_factory=dict)  # name in Task.extra → field id

    def issue_fields(self) -> list[str]:
        """The explicit fields list search/jql needs (its default is ``id`` only)."""
        base = [
            "summary",
            "issuetype",
            "parent",
            "status",
            "assignee",
            "reporter",
            "created",
            "updated",
            "resolutiondate",
            "duedate",
            "project",
            "labels",
            "components",
            "timeoriginalestimate",
            "timeestimate",
            "timespent",
            self.sprint,
            self.story_points,
        ]
        return base + sorted(set(self.custom.values()) - set(base))


def parse_time(value: str | None) -> datetime | None:
    """Jira's ``2026-03-01T10:15:30.123+0100`` → aware UTC (fromisoformat: ~50x faster than strptime)."""
    if not value:
        return None
    return _local_time(value).astimezone(UTC)


def _local_time(value: str) -> datetime:
    try:
        got = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a Jira timestamp: {value!r}") from None
    if got.tzinfo is None:
        raise ValueError(f"Jira timestamp without an offset: {value!r}")
    return got


def parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def hours(seconds: Any) -> Decimal | None:
    return None if seconds is None else (Decimal(int(seconds)) / HOUR).quantize(Q)


def person_id(user: Mapping[str, Any] | None) -> str | None:
    """Cloud users are accountIds; Data Center users are keys (names as a last resort)."""
    if not user:
        return None
    return user.get("accountId") or user.get("key") or user.get("name")


def adf_text(doc: Any) -> str | None:
    """Plain text of an Atlassian Document Format node (or the string Data Center sends)."""
    if doc is None or isinstance(doc, str):
        return doc
    plain = _one_paragraph(doc)
    if plain is not None:
        return plain.strip() or None
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                out.append(node.get("text", ""))
            elif node.get("type") == "hardBreak":
                out.append("\n")
            for child in node.get("content") or ():
                walk(child)
            if (
                node.get("type") in ("paragraph", "heading", "listItem")
                and out
                and not out[-1].endswith("\n")
            ):
                out.append("\n")
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(doc)
    return "".join(out).strip() or None


def _one_paragraph(doc: Any) -> str | None:
    """The text of the common comment shape, one paragraph of plain text nodes; None for anything else."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("content") is None:
        return None
    blocks = doc["content"]
    if not isinstance(blocks, list) or len(blocks) != 1:
        return None
    para = blocks[0]
    if not isinstance(para, dict) or para.get("type") != "paragraph":
        return None
    texts = []
    for node in para.get("content") or ():
        if not isinstance(node, dict) or node.get("type") != "text" or node.get("content"):
            return None
        text = node.get("text", "")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "".join(texts)


_SPRINT_STRING = re.compile(r"state=([A-Z_]+).*?name=([^,\]]*)")


def sprint_name(value: Any) -> str | None:
    """The sprint an issue is in now: the active one, else the last listed."""
    if not value:
        return None
    sprints: list[tuple[str, str]] = []
    for s in value if isinstance(value, list) else [value]:
        if isinstance(s, dict):
            sprints.append(((s.get("state") or "").lower(), s.get("name") or ""))
        elif isinstance(s, str) and (m := _SPRINT_STRING.search(s)):
            sprints.append((m.group(1).lower(), m.group(2)))
    active = [name for state, name in sprints if state == "active"]
    return active[-1] if active else (sprints[-1][1] if sprints else None)


def simple(value: Any) -> Any:
    """A custom field value as something a BI tool can show: options, users and teams by name."""
    if isinstance(value, list):
        return [simple(v) for v in value]
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return adf_text(value)
        for k in ("value", "name", "displayName", "key", "id"):
            if k in value:
                return value[k]
    return value


def project(p: Mapping[str, Any], source: str, browse_url: str) -> Project:
    """``url`` is the page people open (``<site>/browse/KEY``), not the REST ``self`` link."""
    return Project(
        source=source,
        source_id=str(p["id"]),
        key=p.get("key"),
        name=p.get("name"),
        programme=(p.get("projectCategory") or {}).get("name"),
        owner=person_id(p.get("lead")),
        url=f"{browse_url}/browse/{p['key']}" if p.get("key") else None,
    )


def person(u: Mapping[str, Any], source: str) -> Person:
    return Person(
        source=source,
        source_id=str(person_id(u)),
        display_name=u.get("displayName"),
        email=u.get("emailAddress") or None,  # Cloud hides most emails: null, not a guess
        account_id=person_id(u),
        active=u.get("active"),
    )


class Unmappable(ValueError):
    """A payload without what its record cannot do without; ``field`` names it in the quarantine row."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def task(issue: Mapping[str, Any], source: str, fm: FieldMap) -> Task:
    """Raises ``Unmappable`` for an issue without id or fields: loaded, it would be a blank task."""
    if not issue.get("id"):
        raise Unmappable("id", "the issue has no id")
    f = issue.get("fields")
    if not isinstance(f, Mapping) or not f:
        raise Unmappable("fields", "the issue came without its fields")
    status = f.get("status") or {}
    points = f.get(fm.story_points)
    extra = {name: simple(f.get(fid)) for name, fid in sorted(fm.custom.items())}
    return Task(
        source=source,
        source_id=str(issue["id"]),
        project_source_id=str((f.get("project") or {}).get("id")) if f.get("project") else None,
        key=issue.get("key"),
        name=f.get("summary"),
        task_type=(f.get("issuetype") or {}).get("name"),
        parent_source_id=str(f["parent"]["id"]) if f.get("parent") else None,
        status=status.get("name"),
        status_category=CATEGORY.get((status.get("statusCategory") or {}).get("key", "")),
        assignee_source_id=person_id(f.get("assignee")),
        reporter_source_id=person_id(f.get("reporter")),
        sprint=sprint_name(f.get(fm.sprint)),
        labels=",".join(sorted(f.get("labels") or [])) or None,
        components=",".join(sorted(c.get("name", "") for c in f.get("components") or [])) or None,
        created_at=parse_time(f.get("created")),
        source_updated_at=parse_time(f.get("updated")),
        resolved_at=parse_time(f.get("resolutiondate")),
        due_date=parse_date(f.get("duedate")),
        story_points=None if points is None else Decimal(str(points)),
        estimate_hours=hours(f.get("timeoriginalestimate")),
        remaining_hours=hours(f.get("timeestimate")),
        actual_hours=hours(f.get("timespent")),  # Jira's total: the embedded worklog list stops at 20
        extra=json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else None,
    )


def issue_people(issue: Mapping[str, Any], source: str) -> list[Person]:
    f = issue.get("fields") or {}
    return [person(u, source) for u in (f.get("assignee"), f.get("reporter")) if u and person_id(u)]


def time_entry(w: Mapping[str, Any], source: str) -> TimeEntry:
    started = w.get("started")
    local = _local_time(started) if started else None
    return TimeEntry(
        source=source,
        source_id=str(w["id"]),
        person_source_id=person_id(w.get("author")),
        task_source_id=str(w["issueId"]) if w.get("issueId") else None,
        work_date=local.date() if local else None,  # the worker's own calendar day
        hours=hours(w.get("timeSpentSeconds")),
        comment=adf_text(w.get("comment")),
        started_at=local.astimezone(UTC) if local else None,
        source_updated_at=parse_time(w.get("updated")),
    )


def status_changes(
    issue_id: str, history: Mapping[str, Any], source: str, fm: FieldMap
) -> list[StatusChange]:
    """One record per tracked item of a change history; the assignee is kept as a person id."""
    names = {"status": "status", "assignee": "assignee", fm.sprint: "sprint", fm.story_points: "story_points"}
    out = []
    for n, item in enumerate(history.get("items") or ()):
        name = names.get(item.get("fieldId") or item.get("field"))
        if name is None:
            continue
        ids = name == "assignee"
        out.append(
            StatusChange(
                source=source,
                source_id=f"{history['id']}:{n}",
                task_source_id=str(issue_id),
                changed_at=parse_time(history.get("created")),
                field=name,
                from_value=item.get("from") if ids else item.get("fromString"),
                to_value=item.get("to") if ids else item.get("toString"),
                author_source_id=person_id(history.get("author")),
            )
        )
    return out


def reject(source: str, where: str, payload: Mapping[str, Any], error: Exception) -> Rejected:
    """A payload we could not map, kept with its id and the reason; the page goes on."""
    return Rejected(
        source=source,
        locator=f"{where}#{payload.get('id') or payload.get('key')}",
        reason=f"{type(error).__name__}: {error}",
        field=getattr(error, "field", None),
        raw=json.dumps(payload, default=str)[:4000],
    )
