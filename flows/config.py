"""The configuration file: source instances, their streams and mapping profiles, and the warehouse URL.

TOML, because Python reads it without a dependency and PMO engineers edit it by hand. Secrets never live
in it: a credential is ``{ env = "NAME" }`` or ``{ secret = "prefect-secret-block" }`` and is resolved at
run time. ``check`` reports every problem with its dotted path, not just the first.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from connectors.finance import FinanceStream, ProfileError, load_profile
from connectors.jira import config as jira
from connectors.microsoft import config as microsoft
from warehouse.db import make_engine, resolve_url

SECRET_KEYS = ("token", "password", "secret", "client_secret", "api_key", "pat", "private_key")


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


@dataclass
class Config:
    path: Path
    warehouse_url: str | None
    sources: dict[str, SourceConfig]
    raw: dict[str, Any]

    def engine(self, database_url: str | None = None) -> Engine:
        """The warehouse engine: ``database_url`` if given, else as ``warehouse.db.resolve_url`` says."""
        return make_engine(resolve_url(database_url, self.warehouse_url))

    @property
    def base(self) -> Path:
        return self.path.parent

    def streams(self, source: str | None = None, stream: str | None = None) -> list[Any]:
        """Build the stream objects of one source (or all), in configuration order."""
        if source is not None and source not in self.sources:
            raise ConfigError([f"{self.path}: no source named {source!r} (sources: {sorted(self.sources)})"])
        out = []
        for sc in self.sources.values():
            if source is not None and sc.name != source:
                continue
            for s in SOURCE_TYPES[sc.type].build(sc, self.base):
                if stream is None or s.name == stream:
                    out.append(s)
        if stream is not None and not out:
            raise ConfigError([f"{self.path}: source {source!r} has no stream {stream!r}"])
        return out


def resolve_secret(value: Any, where: str) -> str:
    """``{env = "X"}`` → the environment variable; ``{secret = "block"}`` → a Prefect Secret block."""
    if isinstance(value, dict) and "env" in value:
        got = os.environ.get(value["env"])
        if not got:
            raise ConfigError([f"{where}: environment variable {value['env']} is not set"])
        return got
    if isinstance(value, dict) and "secret" in value:
        from prefect.blocks.system import Secret

        return Secret.load(value["secret"]).get()
    raise ConfigError([f'{where}: expected {{ env = "NAME" }} or {{ secret = "block-name" }}'])


def _finance_streams(sc: SourceConfig, base: Path) -> list[FinanceStream]:
    folder = Path(sc.settings["folder"])
    folder = folder if folder.is_absolute() else base / folder
    return [
        FinanceStream(
            source=sc.source,
            name=name,
            folder=folder,
            pattern=s["pattern"],
            profile=load_profile(s["profile"], base),
        )
        for name, s in sc.streams.items()
    ]


def load(path: str | Path) -> Config:
    """Read and validate; raises ConfigError listing every problem."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"{path}: configuration file not found"])
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    problems: list[str] = []
    _find_literal_secrets(raw, str(path), problems)
    wh = raw.get("warehouse", {})
    sources: dict[str, SourceConfig] = {}
    for name, s in (raw.get("sources") or {}).items():
        where = f"{path}: sources.{name}"
        if not isinstance(s, dict):
            problems.append(f"{where}: must be a table")
            continue
        kind = s.get("type")
        if kind not in SOURCE_TYPES:
            problems.append(f"{where}.type: {kind!r} is not a known source type ({sorted(SOURCE_TYPES)})")
            continue
        streams = s.get("streams") or {}
        settings = {k: v for k, v in s.items() if k not in ("type", "instance", "streams")}
        instance = str(s["instance"]) if "instance" in s else None
        sc = SourceConfig(name, kind, instance, settings, streams)
        problems += SOURCE_TYPES[kind].check(sc, where, path.parent)
        sources[name] = sc
    if not sources:
        problems.append(f"{path}: no [sources.<name>] configured")
    from flows.marts import settings as mart_settings
    from flows.reconcile import settings as recon_settings

    problems += recon_settings(raw.get("reconcile") or {}, f"{path}: reconcile")[1]
    problems += mart_settings(raw.get("marts") or {}, raw.get("reconcile") or {}, f"{path}: marts")[1]
    if problems:
        raise ConfigError(problems)
    return Config(path=path, warehouse_url=wh.get("url"), sources=sources, raw=raw)


def _find_literal_secrets(node: Any, where: str, problems: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{where}: {k}" if ": " not in where else f"{where}.{k}"
            if k.lower() in SECRET_KEYS and not (
                isinstance(v, dict) and ({"env"} & v.keys() or {"secret"} & v.keys())
            ):
                problems.append(
                    f'{here}: secrets may not be written in the file; use {{ env = "NAME" }} or'
                    ' {{ secret = "prefect-block" }}'
                )
            elif isinstance(v, dict):
                _find_literal_secrets(v, here, problems)


def _check_finance(sc: SourceConfig, where: str, base: Path) -> list[str]:
    problems = []
    if sc.type == "finance":
        if "folder" not in sc.settings:
            problems.append(f"{where}.folder: missing (the drop folder of export files)")
        if not sc.streams:
            problems.append(
                f"{where}.streams: at least one stream (e.g. [{where.split(': ')[1]}.streams.cost_lines])"
            )
        seen_records: dict[str, str] = {}
        for name, st in sc.streams.items():
            w = f"{where}.streams.{name}"
            for key in ("pattern", "profile"):
                if key not in st:
                    problems.append(f"{w}.{key}: missing")
            unknown = sorted(set(st) - {"pattern", "profile"})
            if unknown:
                problems.append(f"{w}: unknown keys {unknown}")
            if "profile" in st:
                try:
                    prof = load_profile(st["profile"], base)
                except ProfileError as e:
                    problems.append(f"{w}.profile: {e}")
                    continue
                if prof.record in seen_records:
                    problems.append(
                        f"{w}: a second {prof.record} stream in one source would replace the periods of"
                        f" {seen_records[prof.record]!r}; give it its own source"
                    )
                seen_records[prof.record] = name
    return problems


@dataclass(frozen=True)
class SourceType:
    """How to check a ``[sources.X]`` table of one ``type`` and build its streams."""

    build: Callable[[SourceConfig, Path], list[Any]]
    check: Callable[[SourceConfig, str, Path], list[str]]


# Every ``type =`` a source table may name. Connectors get ``resolve_secret`` handed in: they never import
# flows, and secrets are only resolved when streams are built for a run.
_MICROSOFT = SourceType(partial(microsoft.build, resolve=resolve_secret), microsoft.check)
SOURCE_TYPES: dict[str, SourceType] = {
    "finance": SourceType(_finance_streams, _check_finance),
    "jira": SourceType(partial(jira.build, resolve=resolve_secret), jira.check),
    "planner": _MICROSOFT,
    "projectonline": _MICROSOFT,
    "projectfiles": _MICROSOFT,
}
