"""Warehouse tables.

Entity tables are derived from the canonical records in ``model.records`` so the two cannot drift: one
column per record field, ``(source, source_id)`` unique, plus a surrogate ``id`` for BI joins and
``loaded_at`` / ``updated_at`` that move only when a row really changes (upserts skip identical rows).
"""

from __future__ import annotations

import typing
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeEngine

from model.records import ENTITIES, Record

# Plain SQL, not func.now(): Prefect re-compiles func.now() for SQLite into a form executemany rejects.
CURRENT_TIMESTAMP = text("CURRENT_TIMESTAMP")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Integer ids autoincrement on SQLite only as INTEGER; BigInteger elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(18, 4)

_SQL_TYPES: dict[type, TypeEngine] = {
    str: Text(),
    int: Integer(),
    bool: Boolean(),
    date: Date(),
    datetime: DateTime(timezone=True),
    Decimal: Money,
}
# Columns that are keys or codes and get a bounded type so PostgreSQL can index them cheaply.
_KEYS = {"source", "source_id"}


def _column_type(annotation: object) -> TypeEngine:
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    return _SQL_TYPES[args[0]]  # type: ignore[index]


def data_columns(record_type: type[Record]) -> list[str]:
    """Record fields in declaration order: the columns a load writes."""
    return [f.name for f in fields(record_type)]


def _entity_table(name: str, record_type: type[Record]) -> Table:
    hints = typing.get_type_hints(record_type)
    columns = [Column("id", Id, primary_key=True, autoincrement=True)]
    for f in fields(record_type):
        if f.name in _KEYS:
            columns.append(Column(f.name, String(255), nullable=False))
        else:
            columns.append(Column(f.name, _column_type(hints[f.name])))
    columns += [
        Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=CURRENT_TIMESTAMP),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=CURRENT_TIMESTAMP),
    ]
    return Table(name, metadata, *columns, UniqueConstraint("source", "source_id"))


ENTITY_TABLES: dict[str, Table] = {name: _entity_table(name, rt) for name, rt in ENTITIES.items()}

# Lookups the replace/diff and reconciliation paths rely on.
Index(None, ENTITY_TABLES["cost_line"].c.source, ENTITY_TABLES["cost_line"].c.fiscal_period)
Index(None, ENTITY_TABLES["budget"].c.source, ENTITY_TABLES["budget"].c.fiscal_period)
Index(None, ENTITY_TABLES["time_entry"].c.source, ENTITY_TABLES["time_entry"].c.work_date)
Index(None, ENTITY_TABLES["task"].c.source, ENTITY_TABLES["task"].c.project_source_id)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("watermark", Text, doc="Opaque cursor: ISO timestamp, epoch ms or token, as the stream defines"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=CURRENT_TIMESTAMP),
)

sync_item = Table(
    "sync_item",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("item", String(1000), primary_key=True, doc="File path or other unit a stream loads whole"),
    Column("fingerprint", String(128), nullable=False, doc="Content hash of the item as loaded"),
    Column("rows", Integer),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=CURRENT_TIMESTAMP),
)

sync_run = Table(
    "sync_run",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(255), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("mode", String(20), nullable=False, doc="incremental | backfill | full"),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True)),
    Column("status", String(20), nullable=False, doc="running | succeeded | failed"),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_written", Integer, nullable=False, default=0),
    Column("rows_deleted", Integer, nullable=False, default=0),
    Column("rows_quarantined", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=False, default=0),
    Column("watermark_before", Text),
    Column("watermark_after", Text),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index(None, "source", "stream", "started_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(255), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("locator", String(1000), nullable=False, doc="Where the bad input is: file:line, endpoint#id"),
    Column("field", String(255), nullable=False, default=""),
    Column("reason", Text, nullable=False),
    Column("raw", Text, doc="The offending input as received, secrets never included"),
    Column("run_id", Id, doc="sync_run that first saw it"),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=CURRENT_TIMESTAMP),
    UniqueConstraint("source", "stream", "locator", "field"),
)
