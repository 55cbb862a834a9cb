"""The configuration file: source instances, their streams and mapping profiles, the warehouse, alerts.

TOML, because Python reads it without a dependency and PMO engineers edit it by hand. Every table is a
pydantic model (each source type's in its connector's ``config.py``, joined here in a union on ``type``):
unknown keys are refused, folders and files must exist. Secrets never live in the file: a credential is
``{ env = "NAME" }`` or ``{ secret = "prefect-secret-block" }`` and is resolved at run time. ``load``
reports every problem at once, each as ``file:line: dotted.path: what is wrong``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field, PlainValidator, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine

from connectors.config import Loc, PositiveInt, Problem, SecretRef, SourceTable, Table, problems
from connectors.finance import config as finance
from connectors.jira import config as jira
from connectors.microsoft import config as microsoft
from connectors.raid import config as raid
from flows.marts import settings as mart_settings
from flows.reconcile import settings as recon_settings
from model.calendar import read_calendar
from model.redact import register
from warehouse.db import make_engine, resolve_url

SECRET_KEYS = ("token", "password", "secret", "client_secret", "api_key", "pat", "private_key")
LITERAL_SECRET = (
    'secrets may not be written in the file; use { env = "NAME" } or { secret = "prefect-block" }'
)


# Streams in flight when a run names no number (``pmo sync --concurrency``, the flows' ``concurrency``).
DEFAULT_CONCURRENCY = 4


class ConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class SourceConfig:
    name: str
    type: str
    instance: str | None  # as configured; None lets the connector derive it (tenant, site host)
    settings: dict[str, Any]
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The ``source`` every record of this instance carries, e.g. ``finance:acme-sap``."""
        return f"{self.type}:{self.instance or self.name}"

    @property
    def retired(self) -> date | None:
        """The day the source was retired (``retired = 2026-09-30``): not synced since, its rows kept."""
        day = self.settings.get("retired")
        return day if isinstance(day, date) else None


@dataclass
class Config:
    path: Path
    warehouse_url: str | None  # a URL written in the file; None when it is a reference or absent
    sources: dict[str, SourceConfig]
    raw: dict[str, Any]
    warehouse_ref: dict[str, str] | None = None  # ``{ env = .. }`` / ``{ secret = .. }`` as written
    lines: dict[Loc, int] = field(default_factory=dict, repr=False)  # dotted place → line in the file

    def engine(self, database_url: str | None = None) -> Engine:
        """The warehouse engine: ``database_url`` if given, else as ``warehouse.db.resolve_url`` says."""
        return make_engine(resolve_url(database_url, self.configured_url))

    def configured_url(self) -> str | None:
        """``[warehouse] url``: as written, or read from the variable or Secret block it names."""
        if self.warehouse_ref is not None:
            return resolve_secret(self.warehouse_ref, f"{self.path}: warehouse.url")
        return self.warehouse_url

    @property
    def base(self) -> Path:
        return self.path.parent

    def place(self, loc: Loc) -> str:
        """``file:line: dotted.path`` of a place in the file (the line of its nearest written parent)."""
        return _place(self.path, self.lines, loc)

    def set_concurrency(self, n: int | None) -> None:
        """Let every source that fetches in parallel use ``n`` requests in flight: its ``concurrency``
        key, as if written in the file, for the streams built from now on. ``None`` keeps the file's."""
        if n is None:
            return
        if n < 1:
            raise ConfigError([f"concurrency must be at least 1, not {n}"])
        for sc in self.sources.values():
            if "concurrency" in SOURCE_TYPES[sc.type].model.model_fields:
                sc.settings["concurrency"] = n

    def streams(
        self, source: str | None = None, stream: str | None = None, retired: bool = False
    ) -> list[Any]:
        """Build the stream objects of one source (or all), in configuration order; a retired source has
        none to sync (``retired=True``: build them anyway, e.g. to load a history a test or demo needs)."""
        if source is not None and source not in self.sources:
            raise ConfigError([f"{self.path}: no source named {source!r} (sources: {sorted(self.sources)})"])
        if source is not None and self.sources[source].retired and not retired:
            return []
        out = []
        for sc in self.sources.values():
            if source not in (None, sc.name) or (sc.retired and not retired):
                continue
            for s in self._build(sc):
                if stream is None or s.name == stream:
                    out.append(s)
        if stream is not None and not out:
            raise ConfigError([f"{self.place(('sources', str(source)))}: no stream {stream!r}"])
        return out

    def retired(self, source: str | None = None) -> dict[str, date]:
        """Configured name → retirement day, of the retired sources (among ``source`` alone, if given)."""
        return {n: sc.retired for n, sc in self.sources.items() if sc.retired and source in (None, n)}

    def retired_sources(self) -> dict[str, date]:
        """The ``source`` the records of each retired source carry → its retirement day. The streams are
        built only to be named (as their connector names them): their secrets are not read."""
        return {
            s.source: day
            for name, day in self.retired().items()
            for s in self._build(self.sources[name], resolve=_unread)
        }

    def _build(self, sc: SourceConfig, **kw: Any) -> list[Any]:
        """One source's streams; what fails here (a secret not set, a file gone since ``load``) is named at
        its place in the file, never as a traceback. ``kw`` goes to the connector's ``build``."""
        kind = SOURCE_TYPES[sc.type]
        try:
            return kind.build(sc, self.base, **kw)
        except ConfigError as e:  # resolve_secret's problems start with their dotted place
            raise ConfigError([self._located(p) for p in e.problems]) from None
        except ValidationError as e:
            found = problems(e.errors(), kind.model)
            raise ConfigError(
                [f"{self.place(('sources', sc.name, *p.loc))}: {p.message}" for p in found]
            ) from None
        except (OSError, ValueError) as e:
            raise ConfigError([f"{self.place(('sources', sc.name))}: {str(e).splitlines()[0]}"]) from None

    def _located(self, problem: str) -> str:
        dotted, _, message = problem.partition(": ")
        return f"{self.place(tuple(dotted.split('.')))}: {message}"


def _unread(_value: Any, _where: str) -> str:
    """The resolver of a retired source, whose streams are only named: no secret is read."""
    return ""


def resolve_secret(value: SecretRef | dict[str, Any], where: str) -> str:
    """``{env = "X"}`` → the environment variable; ``{secret = "block"}`` → a Prefect Secret block."""
    ref = value.as_dict() if isinstance(value, SecretRef) else value
    if isinstance(ref, dict) and "env" in ref:
        got = os.environ.get(ref["env"])
        if not got:
            raise ConfigError([f"{where}: environment variable {ref['env']} is not set"])
        register(got)
        return got
    if isinstance(ref, dict) and "secret" in ref:
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(ref["secret"]).get()
        except ValueError as e:  # no such block, or Prefect's API refused
            raise ConfigError(
                [f"{where}: secret block {ref['secret']!r}: {str(e).splitlines()[0]}"]
            ) from None
        register(value)
        return value
    raise ConfigError([f'{where}: expected {{ env = "NAME" }} or {{ secret = "block-name" }}'])


@dataclass(frozen=True)
class SourceType:
    """The model of a ``[sources.X]`` table of one ``type``, and how to build its streams."""

    model: type[SourceTable]
    build: Callable[[SourceConfig, Path], list[Any]]


# Every ``type =`` a source table may name. Connectors get ``resolve_secret`` handed in: they never import
# flows, and secrets are only resolved when streams are built for a run.
SOURCE_TYPES: dict[str, SourceType] = {
    "finance": SourceType(finance.FinanceSource, partial(finance.build, resolve=resolve_secret)),
    "jira": SourceType(jira.JiraSource, partial(jira.build, resolve=resolve_secret)),
    "raid": SourceType(raid.RaidSource, partial(raid.build, resolve=resolve_secret)),
    **{
        kind: SourceType(model, partial(microsoft.build, resolve=resolve_secret))
        for kind, model in microsoft.MODELS.items()
    },
}

# A ``[sources.X]`` table: the model its ``type`` names.
Source = Annotated[Union[tuple(t.model for t in SOURCE_TYPES.values())], Field(discriminator="type")]  # noqa: UP007


def _url_or_ref(value: Any) -> SecretStr | SecretRef:
    """A URL as text (kept as SecretStr: it may hold a password), or where to find it."""
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, dict):
        return SecretRef.model_validate(value)
    raise PydanticCustomError("rule", 'a URL, { env = "NAME" } or { secret = "block-name" }')


class Warehouse(Table):
    url: Annotated[SecretStr | SecretRef | None, PlainValidator(_url_or_ref)] = None


class Notify(Table):
    """``[notify]``: where failures and stale sources are reported."""

    block: str | None = None  # the name of a Prefect notification block (Teams, Slack, e-mail)
    stale_after_hours: PositiveInt = 36  # a source not synced for this long is reported


class ConfigFile(Table):
    """The whole file. ``[reconcile]`` and ``[marts]`` are read by flows.reconcile and flows.marts."""

    warehouse: Warehouse = Field(default_factory=Warehouse)
    sources: dict[str, Source] = Field(description="at least one source, e.g. a table named sources.erp")
    notify: Notify = Field(default_factory=Notify)
    reconcile: dict[str, Any] = Field(default_factory=dict)
    marts: dict[str, Any] = Field(default_factory=dict)
    capacity: dict[str, Any] = Field(default_factory=dict)  # model.calendar: the default working calendar

    @field_validator("sources")
    @classmethod
    def _some(cls, sources: dict[str, Any]) -> dict[str, Any]:
        if not sources:
            raise PydanticCustomError("rule", "at least one source, e.g. a table named sources.erp")
        return sources


def load(path: str | Path) -> Config:
    """Read and validate; raises ConfigError listing every problem, each at its line."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"{path}: configuration file not found"])
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        at = re.search(r"\(at line (\d+), column \d+\)", str(e))
        raise ConfigError([f"{path}:{at.group(1) if at else 1}: not valid TOML: {e}"]) from None
    lines = index_lines(text)
    found = _literal_secrets(raw, ())
    try:
        model = ConfigFile.model_validate(raw, context={"base": path.parent})
    except ValidationError as e:
        model = None
        secrets = [p.loc for p in found]  # named already: not also as a key of the wrong type or unknown
        errors = [
            err for err in e.errors() if not any(_strip(tuple(err["loc"]))[: len(s)] == s for s in secrets)
        ]
        found += problems(errors, ConfigFile, _strip)
    found += _settings_problems(raw)
    if found:
        found.sort(key=lambda p: _line(lines, p.anchor or p.loc))  # in the order of the file
        raise ConfigError([f"{path}:{_line(lines, p.anchor or p.loc)}: {_dotted_msg(p)}" for p in found])
    assert model is not None
    url = model.warehouse.url
    return Config(
        path=path,
        warehouse_url=url.get_secret_value() if isinstance(url, SecretStr) else None,
        sources={name: _source_config(name, raw["sources"][name]) for name in model.sources},
        raw=raw,
        warehouse_ref=url.as_dict() if isinstance(url, SecretRef) else None,
        lines=lines,
    )


def _source_config(name: str, table: dict[str, Any]) -> SourceConfig:
    settings = {k: v for k, v in table.items() if k not in ("type", "instance", "streams")}
    return SourceConfig(name, table["type"], table.get("instance"), settings, table.get("streams") or {})


def _strip(loc: Loc) -> Loc:
    """Pydantic puts a source's ``type`` tag after its name (``sources.erp.finance.folder``): not a place."""
    return loc[:2] + loc[3:] if loc[:1] == ("sources",) and len(loc) > 2 else loc


def _settings_problems(raw: dict[str, Any]) -> list[Problem]:
    """``[reconcile]``, ``[marts]`` and ``[capacity]`` as flows.reconcile, flows.marts and model.calendar
    read them."""
    recon, marts, capacity = raw.get("reconcile", {}), raw.get("marts", {}), raw.get("capacity", {})
    if not all(isinstance(t, dict) for t in (recon, marts, capacity)):
        return []  # the model has said so
    found = recon_settings(recon, "reconcile")[1] + mart_settings(marts, recon, "marts")[1]
    found += read_calendar(capacity, "capacity")[1]
    return [Problem(tuple(p.partition(": ")[0].split(".")), p.partition(": ")[2]) for p in found]


def _literal_secrets(node: Any, loc: Loc) -> list[Problem]:
    """Every secret-named key anywhere (even a misspelt table) whose value is not a reference."""
    found: list[Problem] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k.lower() in SECRET_KEYS:  # a table here is a reference: the model checks its keys
                found += [] if isinstance(v, dict) else [Problem((*loc, k), LITERAL_SECRET)]
            elif isinstance(v, dict) and not v.keys() <= {"env", "secret"}:  # not a reference
                found += _literal_secrets(v, (*loc, k))
    return found


# -- lines: tomllib keeps no positions, so the keys' lines are found in the text --------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_PART = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")


def _dotted(key: str) -> Loc:
    return tuple(next(g for g in m.groups() if g is not None) for m in _PART.finditer(key))


def index_lines(text: str) -> dict[Loc, int]:
    """Each table and key of a TOML text (and each of their parents) → the line it is first written on.

    Keys inside inline tables and multi-line values are not indexed: their place is their key's line."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    in_string = False
    for n, line in enumerate(text.splitlines(), start=1):
        if in_string:
            in_string = (line.count('"""') + line.count("'''")) % 2 == 0
            continue
        if header := _HEADER.match(line):
            table = _dotted(header.group(1))
            here = table
        elif key := _KEY.match(line):
            here = (*table, *_dotted(key.group(1)))
            in_string = (line.count('"""') + line.count("'''")) % 2 == 1
        else:
            continue
        for i in range(1, len(here) + 1):
            lines.setdefault(here[:i], n)
    return lines


def _line(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of ``loc``, else of its nearest parent written in the file, else 1."""
    parts = tuple(str(p) for p in loc)
    return next((lines[parts[:i]] for i in range(len(parts), 0, -1) if parts[:i] in lines), 1)


def _place(path: Path, lines: dict[Loc, int], loc: Loc) -> str:
    """``file:line: dotted.path``."""
    return f"{path}:{_line(lines, loc)}: {'.'.join(str(p) for p in loc)}"


def _dotted_msg(p: Problem) -> str:
    return f"{'.'.join(str(x) for x in p.loc)}: {p.message}" if p.loc else p.message
