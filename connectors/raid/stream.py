"""A folder of RAID files (risk and issue logs) as a source: new or changed files by content hash."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from connectors.base import StreamState, fingerprint
from connectors.raid.profiles import RaidProfile
from connectors.raid.reader import RaidFile, raid_file


@dataclass
class RaidStream:
    kind: ClassVar[Literal["items"]] = "items"
    source: str  # raid:<instance>
    name: str
    folder: Path
    pattern: str
    profile: RaidProfile

    def items(self, state: StreamState) -> Iterator[RaidFile]:
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.source}/{self.name}: folder {self.folder} does not exist")
        for path in sorted(self.folder.glob(self.pattern)):  # name order: a later version loads last
            if not path.is_file():
                continue
            name = path.relative_to(self.folder).as_posix()
            digest = fingerprint(path)
            unit = raid_file(path, name, self.source, self.profile, digest)
            if state.mode != "backfill" and all(state.items.get(p.name) == digest for p in unit.parts):
                continue  # every log loaded from this very content
            yield unit
