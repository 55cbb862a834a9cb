"""A drop folder of ERP exports as a source: each stream is a file pattern read through one profile.

New or changed files (by content hash) load; files already loaded with the same content are skipped,
so re-running a sync is a no-op. A backfill reloads every matching file regardless.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from connectors.base import StreamState, fingerprint
from connectors.finance.profiles import Profile
from connectors.finance.reader import ExportFile


@dataclass
class FinanceStream:
    kind: ClassVar[Literal["items"]] = "items"
    source: str  # finance:<instance>
    name: str  # cost_lines | budgets | any name the configuration gives
    folder: Path
    pattern: str
    profile: Profile

    def items(self, state: StreamState) -> Iterator[ExportFile]:
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.source}/{self.name}: drop folder {self.folder} does not exist")
        # Name order: exports are named by date or period, so a correction loads after what it corrects.
        for path in sorted(self.folder.glob(self.pattern)):
            if not path.is_file():
                continue
            name = path.relative_to(self.folder).as_posix()
            digest = fingerprint(path)
            if state.mode != "backfill" and state.items.get(name) == digest:
                continue
            yield ExportFile(path, name, self.source, self.profile, digest)
