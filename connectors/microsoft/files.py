"""A folder of project files (MSPDI .xml, .mpp) as a source.

Each new or changed file (by content hash) is handed to the warehouse as one unit of five parts, one per
record type (``<file>#planned_work``, ``#task``, ``#project``, ``#person``, ``#capacity``), because the
staged loader merges one record type per item. The parts stream: each yields its records in batches as
the file is read (``ProjectPlan``: planned work in a first pass over the file, tasks in a second), so a
plan is never held whole in memory. The parts commit together, with their five fingerprints, or not at
all; a file counts as loaded only when all five are on record with its fingerprint, so a crash mid-file
reloads the whole file. Tasks and planned work replace their project's rows wholesale (``replace_scope =
project_source_id``), so a task deleted from the plan is marked deleted; capacity replaces each
resource's days. A file that cannot be read (malformed, hostile) becomes one failing item: quarantined by
name, nothing loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from connectors.base import ItemError, Line, StreamState, fingerprint
from connectors.microsoft.mpp import read_mpp
from connectors.microsoft.mspdi import Elements, ProjectFileRecords, ProjectPlan, read_mspdi
from model.records import Capacity, PlannedWork, Project, Record, Rejected, Task, as_json
from model.records import Person as PersonRecord

BATCH = 5000
_SCOPES: dict[type[Record], tuple[str, ...]] = {
    Project: (),
    PersonRecord: (),
    Task: ("project_source_id",),
    PlannedWork: ("project_source_id",),
    Capacity: ("person_source_id",),  # a resource's days in the plan's span
}
_PARTS = tuple(_SCOPES)  # a file's record types: one item each, all five on record once it is loaded


@dataclass
class ProjectFileItem:
    """One record type of one parsed project file: an ``Item`` for the staged loader."""

    name: str
    fingerprint: str
    record_type: type[Record]
    replace_scope: Sequence[str]
    records: Callable[[], Iterable[Record | Rejected]]  # one pass over the file: its records as read

    def lines(self) -> Iterator[Sequence[Line | Rejected]]:
        file = self.name.rpartition("#")[0]
        batch: list[Line | Rejected] = []
        n = 0
        for r in self.records():
            if isinstance(r, Rejected):
                batch.append(r)
            else:
                n += 1
                batch.append(Line(n, f"{file}#{r.source_id}", r))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


@dataclass
class ProjectFile:
    """One project file: the unit the runner loads, its ``parts`` in one transaction."""

    name: str
    parts: Sequence[ProjectFileItem]


@dataclass
class UnreadableFile:
    """A project file that failed as a whole: raising in ``lines`` makes the runner quarantine it by name."""

    name: str
    fingerprint: str
    error: ItemError
    record_type: type[Record] = Task
    replace_scope: Sequence[str] = ()

    def lines(self) -> Iterator[Sequence[Line | Rejected]]:
        raise self.error


def file_items(name: str, digest: str, plan: ProjectPlan) -> list[ProjectFileItem]:
    """The file's five parts: ``<file>#<entity>`` per record type, each with the file's fingerprint, in
    the order that reads the file twice at most."""
    return [
        ProjectFileItem(
            name=f"{name}#{rtype.entity}",
            fingerprint=digest,
            record_type=rtype,
            replace_scope=_SCOPES[rtype],
            records=records,
        )
        for rtype, records in plan.by_type().items()
    ]


@dataclass
class ProjectFilesStream:
    kind: ClassVar[Literal["items"]] = "items"
    source: str  # projectfiles:<instance>
    name: str
    folder: Path
    patterns: Sequence[str] = ("*.xml", "*.mpp")

    def items(self, state: StreamState) -> Iterator[ProjectFile | UnreadableFile]:
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.source}/{self.name}: folder {self.folder} does not exist")
        paths = sorted({p for pat in self.patterns for p in self.folder.glob(pat) if p.is_file()})
        for path in paths:
            name = path.relative_to(self.folder).as_posix()
            digest = fingerprint(path)
            if state.mode != "backfill" and all(
                state.items.get(f"{name}#{rtype.entity}") == digest for rtype in _PARTS
            ):
                continue  # every part loaded from this very content
            try:
                plan = open_project_file(path, self.source, name)
            except ItemError as e:  # refused at its start: a foreign or hostile XML, an unreadable .mpp
                yield UnreadableFile(name, digest, e)
                continue
            yield ProjectFile(name, file_items(name, digest, plan))


def open_project_file(path: Path, source: str, name: str | None = None) -> ProjectPlan:
    """An MSPDI (.xml) or .mpp file as a ``ProjectPlan``; raises ProjectFileError for a file unusable as
    a whole, as far as its start shows (a hostile or foreign XML, an .mpp mpxj cannot read).

    Here, above both readers, so neither imports the other (.mpp elements are mapped by the MSPDI code)."""
    name = name or path.name
    if path.suffix.lower() == ".mpp":
        elements: Elements = read_mpp(path, name)
    else:
        next(read_mspdi(path, name))  # the root and the prolog: refused here rather than mid-load
        elements = partial(read_mspdi, path, name)
    return ProjectPlan(elements, source, name, path.stem)


def read_project_file(path: Path, source: str, name: str | None = None) -> ProjectFileRecords:
    """An MSPDI (.xml) or .mpp file → all its records at once (for ``pmo inspect`` and tests)."""
    return open_project_file(path, source, name).records()


def inspect_file(path: str | Path, source: str = "projectfiles:inspect") -> Iterator[dict[str, Any]]:
    """The records a project file yields, and its rejections, as JSON-ready dicts (``pmo inspect``)."""
    plan = open_project_file(Path(path), source)
    for stream in plan.by_type().values():
        yield from map(as_json, stream())
