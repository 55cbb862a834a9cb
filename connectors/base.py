"""What every connector hands the flows: streams that yield pages of canonical records.

A connector knows one source and nothing of SQL (docs/architecture.md, "Rules of the house"). The flow stores
each page and, when the page says so, commits it together with the watermark it carries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

from model.records import DELETED_AT_SOURCE, Record, Rejected

# A deletion scan may retire at most this share of an entity's live rows in one run (unless allowed):
# a listing that suddenly lacks most rows is far likelier a fault (a narrowed permission, a half-answered
# search) than a real mass deletion, and a wrong soft-delete hides rows from every report.
MAX_DELETE_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Window:
    """The slice of source time a run reads; ``None`` ends are open."""

    start: datetime | None = None
    end: datetime | None = None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a stream's next run starts, the one shape every watermark takes (stored as JSON).

    ``updated``: everything the source changed before this time is stored (the next window starts here,
    minus a lookback). Mid-run, ``until`` (the window's end) and ``after_id`` (the last id stored, for
    sources read in id order) let a killed run resume where it stopped instead of starting over.
    """

    updated: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None

    def to_text(self) -> str:
        """JSON for ``sync_state.watermark``; ``updated`` always present, the resume point only mid-run."""
        text: dict[str, Any] = {"updated": _iso(self.updated)}
        if self.after_id is not None:
            text.update(until=_iso(self.until), after_id=self.after_id)
        return json.dumps(text)

    @classmethod
    def from_text(cls, text: str | None) -> Cursor:
        """A stored watermark in any shape it was ever written, so warehouses keep their place: this JSON,
        a bare ISO time (ProjectData before), epoch milliseconds (Jira worklogs before), or none."""
        if not text:
            return cls()
        try:
            value = json.loads(text)
        except ValueError:
            value = text  # a bare ISO time is not JSON
        try:
            if isinstance(value, dict):
                after_id = value.get("after_id")
                if after_id is not None and type(after_id) is not int:
                    raise ValueError(f"after_id {after_id!r} is not an integer")
                return cls(_time(value.get("updated")), _time(value.get("until")), after_id)
            if type(value) is int:
                return cls(EPOCH + timedelta(milliseconds=value))
            if isinstance(value, str):
                return cls(_time(value))
            raise ValueError(f"a JSON {type(value).__name__}")
        except ValueError as e:
            raise ValueError(
                f"unreadable watermark {text[:100]!r} ({e}): expected a JSON cursor, an ISO time or epoch ms"
            ) from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    """An ISO time as an aware datetime (UTC when it names no zone)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(slots=True)
class Page:
    """A page of records plus what the warehouse must do with it.

    ``watermark``: safe to persist once this page (and all before it) is committed (``Cursor.to_text``).
    ``deleted``: entity → source ids the source reported gone, retired with ``deleted_reason``.
    ``requests``: HTTP requests (or files) spent producing this page, for ``sync_run``.
    ``items``: item → fingerprint to remember with this page (``None`` forgets the item). Lets a stream
    that must rescan fully (Graph v1.0 has no delta) skip what is unchanged (by etag) next time and
    find what vanished; the next run sees them in ``StreamState.items``.
    """

    records: Sequence[Record] = ()
    rejected: Sequence[Rejected] = ()
    deleted: Mapping[str, Sequence[str]] = field(default_factory=dict)
    deleted_reason: str = DELETED_AT_SOURCE
    watermark: str | None = None
    requests: int = 0
    items: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamState:
    """What a stream may know of the warehouse: its watermark and the items (files) it has loaded.

    ``known_ids(entity)``: the source ids of this source the warehouse holds and has not marked deleted.
    For streams that find deletions by comparing a full id listing with the warehouse (Jira issues); lazy,
    so streams that never call it cost nothing, and the connector still never touches SQL.
    """

    watermark: str | None = None
    items: Mapping[str, str] = field(default_factory=dict)
    window: Window = Window()
    mode: str = "incremental"  # incremental | backfill | full
    known_ids: Callable[[str], Collection[str]] | None = None
    allow_mass_delete: bool = False

    @property
    def cursor(self) -> Cursor:
        """The stored watermark, read."""
        return Cursor.from_text(self.watermark)

    def check_deletions(self, where: str, entity: str, gone: int, live: int, or_else: str = "") -> None:
        """Refuse to retire more than ``MAX_DELETE_SHARE`` of ``live`` rows unless the run allows it.

        ``or_else`` names another intended cause the operator may recognise (a narrowed scope)."""
        if self.allow_mass_delete or gone <= max(1, live * MAX_DELETE_SHARE):
            return
        raise SourceError(
            f"{where}: refusing to mark {gone:,} of {live:,} live {entity} rows deleted"
            f" ({gone / live:.0%} > {MAX_DELETE_SHARE:.0%}); if the source really lost them{or_else},"
            " run again with --allow-mass-delete"
        )


StreamKind = Literal["pages", "items"]


class Stream(Protocol):
    """One kind of record from one source instance (``finance:acme-sap`` / ``cost_lines``).

    ``after``: the streams of the same source that must have finished before this one starts (see
    ``after_of``); streams that name none of each other may run at the same time.
    """

    kind: ClassVar[Literal["pages"]]
    source: str
    name: str
    after: ClassVar[tuple[str, ...]]

    def read(self, state: StreamState) -> Iterator[Page]: ...


def after_of(stream: Stream | ItemStream) -> tuple[str, ...]:
    """The names of the streams of its source a stream runs after; one that declares none: no order."""
    return tuple(getattr(stream, "after", ()))


def kind_of(stream: Stream | ItemStream) -> StreamKind:
    """How the runner loads a stream: its declared ``kind``; one that declares none yields pages."""
    return getattr(stream, "kind", "pages")


def fingerprint(path: Path) -> str:
    """Content hash of a file: an identical re-export is not reloaded; a changed one is."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class BadValue(ValueError):
    """A source value that does not parse; the message says what was expected (quarantine reason)."""


class ItemError(ValueError):
    """An item (file) that cannot be read as a whole: it is quarantined by name and the run goes on."""


class SourceError(RuntimeError):
    """A source answered something we cannot use; the message names the source, the place and the reason."""


class Line(NamedTuple):
    """One parsed line of an item: its line number, its locator (``file:line``) and its record.

    A tuple, because it is built once per line of every export and staged as it is.
    """

    line_no: int
    locator: str
    record: Record


class Item(Protocol):
    """A unit a file stream loads whole (an export file): replaced as one, skipped when unchanged."""

    name: str  # stable item key, e.g. the file name relative to the drop folder
    fingerprint: str  # content hash
    record_type: type[Record]
    replace_scope: Sequence[str]  # record fields whose values this item replaces wholesale

    def lines(self) -> Iterator[Sequence[Line | Rejected]]: ...


class ItemStream(Protocol):
    """A stream of whole items (file drops): the warehouse stages each item and merges it in one go."""

    kind: ClassVar[Literal["items"]]
    source: str
    name: str
    after: ClassVar[tuple[str, ...]]

    def items(self, state: StreamState) -> Iterator[Item]: ...


def map_each(
    payloads: Iterable[Mapping[str, Any]],
    fn: Callable[[Mapping[str, Any]], Record | None],
    source: str,
    where: str,
    id_key: str = "id",
) -> tuple[list[Record], list[Rejected]]:
    """Map every payload; one that cannot be mapped (no ``id_key``, another key missing, a value of the
    wrong shape) is quarantined as ``<where>#<id>`` with its reason and raw JSON, and the rest still load.
    ``fn`` may return None for a payload that is no record by design."""
    records: list[Record] = []
    rejected: list[Rejected] = []
    for p in keyed(payloads, id_key, source, where, rejected):
        try:
            record = fn(p)
        except (KeyError, ValueError, TypeError, AttributeError, ArithmeticError) as e:
            rejected.append(unmappable(source, f"{where}#{p.get(id_key)}", p, e))
            continue
        if record is not None:
            records.append(record)
    return records, rejected


def keyed(
    payloads: Iterable[Mapping[str, Any]], key: str, source: str, where: str, rejected: list[Rejected]
) -> Iterator[Mapping[str, Any]]:
    """The payloads whose ``key`` is a non-empty string; the others go to ``rejected``, each named by a
    digest of its content (the same bad payload, the same quarantine row, run after run)."""
    for p in payloads:
        value = p.get(key)
        if isinstance(value, str) and value:
            yield p
        else:
            digest = hashlib.blake2b(json.dumps(p, sort_keys=True, default=str).encode(), digest_size=6)
            rejected.append(unmappable(source, f"{where}#no {key}:{digest.hexdigest()}", p, KeyError(key)))


def unmappable(source: str, locator: str, payload: Mapping[str, Any], error: Exception) -> Rejected:
    """A payload that could not become a record: a missing key names the field, anything else its error."""
    if isinstance(error, KeyError):
        field, reason = str(error.args[0]), f"missing {error.args[0]!r}"
    else:
        field, reason = None, f"{type(error).__name__}: {error}"
    return Rejected(
        source=source,
        locator=locator,
        field=field,
        reason=reason,
        raw=json.dumps(payload, default=str)[:4000],
    )
