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
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeEngine

# The marts (dimensions, facts, RAG rules) live in the same metadata: importing them registers them, so
# whoever imports the schema (migrations, create_all, the data dictionary) sees every table.
import warehouse.marts.tables  # noqa: F401
from model.records import ENTITIES, Record
from warehouse.base import Id, Money, metadata

# Plain SQL, not func.now(): Prefect re-compiles func.now() for SQLite into a form executemany rejects.
CURRENT_TIMESTAMP = text("CURRENT_TIMESTAMP")


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
Index(None, ENTITY_TABLES["cost_line"].c.source, ENTITY_TABLES["cost_line"].c.file)
Index(None, ENTITY_TABLES["budget"].c.source, ENTITY_TABLES["budget"].c.file)
Index(None, ENTITY_TABLES["time_entry"].c.source, ENTITY_TABLES["time_entry"].c.work_date)
Index(None, ENTITY_TABLES["task"].c.source, ENTITY_TABLES["task"].c.project_source_id)
_capacity = ENTITY_TABLES["capacity"].c
Index(None, _capacity.source, _capacity.person_source_id, _capacity.work_date)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column(
        "watermark",
        Text,
        doc="The stream's cursor as JSON (connectors.base.Cursor: updated, until, after_id)",
    ),
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
    Column("status", String(20), nullable=False, doc="running | succeeded | failed | abandoned"),
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

source_retired = Table(
    "source_retired",
    metadata,
    Column("source", String(255), primary_key=True, doc="A source instance the configuration marks retired"),
    Column("retired_on", Date, nullable=False, doc="The day it was retired: it is not synced since"),
    Column("noted_at", DateTime(timezone=True), nullable=False, doc="When a sync first read it retired"),
)

sync_lock = Table(
    "sync_lock",
    metadata,
    Column("source", String(255), primary_key=True, doc="The source instance a running sync holds"),
    Column("holder", String(255), nullable=False, doc="host:pid of the process holding it"),
    Column("run_id", Id, doc="sync_run of the holder's current stream"),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False, doc="Moves while the holder works"),
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


# --- Reconciliation: crosswalks, decisions, reviews, the reconciled project, exceptions -----------------

XREF_ENTITIES = ("project", "person", "task")


def _xref(entity: str) -> Table:
    """Canonical id <-> (source, source_id). A row is valid from ``valid_from`` until ``valid_to``; the
    current mapping has ``valid_to`` NULL, so history is kept when a record moves to another canonical id."""
    return Table(
        f"{entity}_xref",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("canonical_id", BigInteger, nullable=False, doc=f"Stable id of the {entity} across tools"),
        Column("source", String(255), nullable=False),
        Column("source_id", String(255), nullable=False),
        Column("method", String(10), doc="manual | key | rule | fuzzy; NULL when nothing else matched"),
        Column("confidence", Numeric(5, 2), doc="0-100"),
        Column("review_status", String(10), nullable=False, doc="auto | approved | pending | unmatched"),
        Column("matched_source", String(255), doc="The record this one was matched to"),
        Column("matched_source_id", String(255)),
        Column("reason", Text, doc="Evidence: the shared key, the rule, the name score"),
        Column("decided_by", String(255), doc="Who approved a manual mapping; 'pmo-sync' otherwise"),
        Column("decided_at", DateTime(timezone=True)),
        Column("valid_from", DateTime(timezone=True), nullable=False),
        Column("valid_to", DateTime(timezone=True)),
        UniqueConstraint("source", "source_id", "valid_from"),
        Index(None, "canonical_id"),
    )


XREF_TABLES: dict[str, Table] = {e: _xref(e) for e in XREF_ENTITIES}
project_xref, person_xref, task_xref = (XREF_TABLES[e] for e in XREF_ENTITIES)

mapping_decision = Table(
    "mapping_decision",
    metadata,
    Column("entity", String(20), primary_key=True),
    Column("source", String(255), primary_key=True),
    Column("source_id", String(255), primary_key=True),
    Column("other_source", String(255), primary_key=True),
    Column("other_source_id", String(255), primary_key=True),
    Column("verdict", String(10), nullable=False, doc="same | distinct"),
    Column("decided_by", String(255), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("note", Text),
    Column("origin", String(10), nullable=False, doc="cli | file"),
)

mapping_review = Table(
    "mapping_review",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(20), nullable=False),
    Column("source", String(255), nullable=False),
    Column("source_id", String(255), nullable=False),
    Column("name", Text),
    Column("candidate_source", String(255), nullable=False),
    Column("candidate_source_id", String(255), nullable=False),
    Column("candidate_name", Text),
    Column("score", Numeric(5, 2), nullable=False),
    Column("reason", Text),
    Column("status", String(10), nullable=False, doc="open | approved | rejected | obsolete"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(255)),
    Column("decided_at", DateTime(timezone=True)),
    UniqueConstraint("entity", "source", "source_id", "candidate_source", "candidate_source_id"),
)

project_reconciled = Table(
    "project_reconciled",
    metadata,
    Column("canonical_id", BigInteger, primary_key=True),
    *(
        Column(name, _column_type(typing.get_type_hints(ENTITIES["project"])[name]))
        for name in (
            "key",
            "name",
            "programme",
            "status",
            "status_category",
            "owner",
            "cost_centre",
            "wbs_code",
            "start_date",
            "finish_date",
            "baseline_start",
            "baseline_finish",
            "percent_complete",
            "budget_amount",
            "currency",
        )
    ),
    Column("sources", Text, nullable=False, doc="Every member record, 'source/source_id' joined by ' | '"),
    Column("field_sources", Text, nullable=False, doc="JSON: field -> the source whose value won"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=CURRENT_TIMESTAMP),
)

recon_exception = Table(
    "recon_exception",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(40), nullable=False),
    Column("severity", String(10), nullable=False, doc="low | medium | high"),
    Column("subject_type", String(10), nullable=False, doc="project | person | task"),
    Column("subject_id", BigInteger, nullable=False, doc="canonical id in the subject's crosswalk"),
    Column("subject_key", String(255), doc="The PMO's code for the subject: project key, e-mail, issue key"),
    Column("subject_name", Text),
    Column("period", String(10), nullable=False, doc="ISO week 2026-W07, month or fiscal period 2026-03, ''"),
    Column("sources", String(600), nullable=False, doc="The sources compared, sorted, joined by '|'"),
    Column("expected", Numeric(18, 4), doc="Value in the first source"),
    Column("actual", Numeric(18, 4), doc="Value in the second source (or what was found)"),
    Column("difference", Numeric(18, 4), doc="actual - expected"),
    Column("pct_difference", Numeric(12, 2), doc="difference / |expected| x 100; NULL when expected is 0"),
    Column(
        "unit",
        String(10),
        nullable=False,
        doc="hours | days | tasks | the currency code of an amount (EUR), 'mixed' when several",
    ),
    Column("detail", Text),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column(
        "resolved_at", DateTime(timezone=True), doc="Set when a later run no longer finds it; never deleted"
    ),
    UniqueConstraint("rule", "subject_type", "subject_id", "period", "sources"),
)
