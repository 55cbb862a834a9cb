"""``[sources.X]`` tables of ``type = "finance"``: a drop folder of ERP exports, one stream per export kind.

```toml
[sources.erp]
type = "finance"
instance = "acme-sap"                  # records carry source = "finance:acme-sap"
folder = "exports"                     # relative to the configuration file; must exist

[sources.erp.streams.cost_lines]
pattern = "cji3_*.csv"                 # a glob inside the folder
profile = "sap_cji3"                   # a built-in profile, or a profile .toml relative to the file
```
``flows.config`` joins ``FinanceSource`` into its union on ``type``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connectors.config import Folder, Resolve, SourceTable, Table, at, profile_loader
from connectors.finance.profiles import Profile, ProfileError, load_profile
from connectors.finance.stream import FinanceStream

_profile = profile_loader(load_profile, ProfileError)


class FinanceStreamTable(Table):
    pattern: str = Field(description='the files to load, a glob such as "cji3_*.csv"')
    profile: Annotated[Profile, PlainValidator(_profile)] = Field(
        description='how to read them: a built-in profile such as "generic_costs", or a .toml file'
    )


class FinanceSource(SourceTable):
    type: Literal["finance"]
    folder: Folder = Field(description="the drop folder of export files")
    streams: dict[str, FinanceStreamTable] = Field(
        description="at least one, e.g. a table named sources.erp.streams.costs"
    )

    @field_validator("streams")
    @classmethod
    def _some(cls, streams: dict[str, FinanceStreamTable]) -> dict[str, FinanceStreamTable]:
        if not streams:
            raise PydanticCustomError(
                "rule", "at least one stream, e.g. a table named sources.erp.streams.costs"
            )
        return streams

    @model_validator(mode="after")
    def _one_stream_per_record(self) -> FinanceSource:
        """A stream replaces what it loaded of its record type: two in one source would fight over it."""
        seen: dict[str, str] = {}
        for name, st in self.streams.items():
            record = st.profile.record
            if record in seen:
                raise at(
                    ("streams", name),
                    "a second {record} stream in one source would replace the periods of {first};"
                    " give it its own source",
                    record=record,
                    first=repr(seen[record]),
                )
            seen[record] = name
        return self


def build(sc: Any, base: Path, resolve: Resolve) -> list[FinanceStream]:
    """One stream per ``[sources.X.streams.Y]``; finance sources hold no secrets (``resolve`` is unused)."""
    s = FinanceSource.of(sc, base)
    return [
        FinanceStream(source=sc.source, name=name, folder=s.folder, pattern=st.pattern, profile=st.profile)
        for name, st in s.streams.items()
    ]
