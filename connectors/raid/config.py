"""``[sources.X]`` tables of ``type = "raid"``: a folder of RAID logs (risk and issue registers).

```toml
[sources.raid]
type = "raid"
instance = "pmo"                 # records carry source = "raid:pmo"
folder = "raid"                  # relative to the configuration file; must exist
pattern = "RAID_*.xlsx"          # the files to load (name order: a later version loads last)
profile = "pmo_raid"             # built-in (sheets Risks and Issues), or a profile .toml
```
One stream, ``raid``, loads each file's logs together. ``flows.config`` joins ``RaidSource`` into its
union on ``type``. See docs/setup/raid-files.md for profiles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator

from connectors.config import Folder, Resolve, SourceTable, profile_loader
from connectors.raid.profiles import ProfileError, RaidProfile, load_profile
from connectors.raid.stream import RaidStream

_profile = profile_loader(load_profile, ProfileError)


class RaidSource(SourceTable):
    type: Literal["raid"]
    folder: Folder = Field(description="the folder of RAID files")
    pattern: str = Field(default="*.xlsx", description='the files to load, a glob such as "RAID_*.xlsx"')
    profile: Annotated[RaidProfile, PlainValidator(_profile)] = Field(
        default_factory=lambda: load_profile("pmo_raid"),
        description='how to read them: the built-in "pmo_raid" or a profile .toml',
    )


def build(sc: Any, base: Path, resolve: Resolve) -> list[RaidStream]:
    """The one ``raid`` stream; RAID folders hold no secrets (``resolve`` is unused)."""
    s = RaidSource.of(sc, base)
    return [RaidStream(sc.source, "raid", s.folder, s.pattern, s.profile)]
