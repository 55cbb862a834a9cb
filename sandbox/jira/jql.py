"""The slice of JQL the simulator understands: ANDed clauses over project, key, id, issuetype, created and
updated.

Enough for scopes like ``project in (CRM, DLM)`` and the bounded, ordered queries the connector sends;
anything else is answered the way Jira answers a query it cannot parse (HTTP 400 with errorMessages).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sandbox.jira.data import Issue

Predicate = Callable[[Issue], bool]


class JqlError(ValueError):
    """JQL the simulator cannot parse: answered with Jira's 400 and its errorMessages."""


_CLAUSE = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|=|>|<|\bin\b|\bnot in\b|\bis not\b|\bis\b)\s*(.+?)\s*$", re.I)


def parse(
    jql: str, tz: ZoneInfo, project_keys: dict[str, int]
) -> tuple[list[Predicate], list[tuple[str, bool]]]:
    """(predicates, order) for ``jql``; raises JqlError with Jira's wording when it cannot."""
    m = re.search(r"\border\s+by\b", jql, re.I)
    where, order_by = (jql[: m.start()], jql[m.end() :]) if m else (jql, "")
    order = []
    for part in filter(None, (p.strip() for p in order_by.split(","))):
        name, *direction = part.split()
        order.append((name.lower(), bool(direction) and direction[0].lower() == "desc"))
    preds = [_clause(c, tz, project_keys) for c in _split_and(where)]
    return preds, order or [("key", True)]


_ID_BOUND = re.compile(r"^\s*id\s*(>=|<=|>|<)\s*(\d+)\s*$", re.I)


def id_bounds(jql: str) -> tuple[int, int | None]:
    """The id range ``[lo, hi]`` the top-level ``id >|>=|<|<= N`` clauses leave (as Jira's index would
    narrow it); the query's predicates still decide, this only spares looking at every issue."""
    m = re.search(r"\border\s+by\b", jql, re.I)
    lo, hi = 0, None
    for clause in _split_and(jql[: m.start()] if m else jql):
        b = _ID_BOUND.match(clause)
        if b:
            op, n = b[1], int(b[2])
            if op in (">", ">="):
                lo = max(lo, n + (op == ">"))
            else:
                hi = min(hi if hi is not None else n, n - (op == "<"))
    return lo, hi


def _split_and(text: str) -> list[str]:
    text = text.strip()
    while text.startswith("(") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    if not text:
        return []
    parts, depth, start, i = [], 0, 0, 0
    in_quote = False
    while i < len(text):
        ch = text[i]
        if ch == '"':
            in_quote = not in_quote
        elif not in_quote and ch == "(":
            depth += 1
        elif not in_quote and ch == ")":
            depth -= 1
        elif not in_quote and depth == 0 and text[i : i + 5].upper() == " AND ":
            parts.append(text[start:i])
            start = i + 5
            i += 4
        elif not in_quote and depth == 0 and text[i : i + 4].upper() == " OR ":
            raise JqlError("The simulator supports only AND in JQL")
        i += 1
    parts.append(text[start:])
    out: list[str] = []
    for p in parts:
        p = p.strip()
        if p.startswith("(") and _closing(p, 0) == len(p) - 1:
            out += _split_and(p)
        else:
            out.append(p)
    return out


def _closing(text: str, at: int) -> int:
    depth = 0
    for i in range(at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _values(raw: str) -> list[str]:
    raw = raw.strip()
    if raw.startswith("("):
        raw = raw[1:-1]
    return [v.strip().strip('"').strip("'") for v in raw.split(",") if v.strip()]


def _time(raw: str, tz: ZoneInfo) -> int:
    raw = raw.strip().strip('"').strip("'")
    if raw.isdigit():
        return int(raw)
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return int(datetime.strptime(raw, fmt).replace(tzinfo=tz).timestamp() * 1000)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{raw}' for field 'updated' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'"
    )


_OPS: dict[str, Callable[[int, int], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _clause(text: str, tz: ZoneInfo, project_keys: dict[str, int]) -> Predicate:
    m = _CLAUSE.match(text)
    if not m:
        raise JqlError(f"Error in the JQL Query: Expecting operator but got '{text}'.")
    name, op, raw = m.group(1).lower(), m.group(2).lower(), m.group(3)
    if name == "project":
        if op in ("is not", "is") and raw.upper() == "EMPTY":
            return lambda i: op == "is not"
        keys = _values(raw)
        unknown = [k for k in keys if k.upper() not in project_keys and not k.isdigit()]
        if unknown:
            raise JqlError(f"The value '{unknown[0]}' does not exist for the field 'project'.")
        ids = {project_keys.get(k.upper(), int(k) if k.isdigit() else -1) for k in keys}
        return (lambda i: i.project_id in ids) if op in ("in", "=") else (lambda i: i.project_id not in ids)
    if name in ("id", "issuekey", "key"):
        if op in ("in", "not in"):
            vals = set(_values(raw))

            def hit(i: Issue) -> bool:
                return str(i.id) in vals or i.key in vals

            return hit if op == "in" else (lambda i: not hit(i))
        ref = int(raw) if raw.isdigit() else None
        if ref is None or op not in _OPS:
            raise JqlError(f"Error in the JQL Query: unsupported clause '{text}'.")
        f = _OPS[op]
        return lambda i: f(i.id, ref)
    if name == "issuetype":
        if op not in ("in", "not in", "=", "!="):
            raise JqlError(f"Error in the JQL Query: unsupported operator '{op}' for 'issuetype'.")
        types = {v.lower() for v in _values(raw)}
        keep = op in ("in", "=")
        return lambda i: (str(i.fields.get("issuetype", "")).lower() in types) == keep
    if name in ("updated", "created"):
        if op not in _OPS:
            raise JqlError(f"Error in the JQL Query: unsupported operator '{op}' for '{name}'.")
        # JQL dates have minute precision: compare on the minute, as Jira does.
        ref, f = _time(raw, tz), _OPS[op]
        attr = name
        return lambda i: f(getattr(i, attr) // 60_000 * 60_000, ref)
    raise JqlError(f"Field '{m.group(1)}' does not exist or you do not have permission to view it.")


def sort_key(order: list[tuple[str, bool]]) -> Callable[[Issue], tuple]:
    """Sort key for ``order``; issue id breaks ties so paging is stable."""

    def key(i: Issue) -> tuple:
        out: list = []
        for name, desc in order:
            v = {"id": i.id, "key": i.id, "issuekey": i.id, "updated": i.updated, "created": i.created}.get(
                name
            )
            if v is None:
                raise JqlError(f"Not able to sort using field '{name}'.")
            out.append(-v if desc else v)
        out.append(i.id)
        return tuple(out)

    return key
