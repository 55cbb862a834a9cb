"""Bulk writes: page upserts, deletion marks and staged whole-file merges.

Upserts use the dialect's ``INSERT .. ON CONFLICT (source, source_id) DO UPDATE`` run as one driver
executemany with no RETURNING (docs/architecture.md, "Running it"). The update only fires when some column is
really different (``IS DISTINCT FROM``), so re-loading unchanged data writes nothing and ``updated_at``
keeps meaning "last real change".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    and_,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from model import validate
from model.records import DELETED_AT_SOURCE, Record, Rejected
from warehouse.schema import CURRENT_TIMESTAMP, ENTITY_TABLES, data_columns, quarantine

T = TypeVar("T")

_ROW_GETTERS: dict[type, tuple[list[str], attrgetter]] = {}


def _rows(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Records to parameter dicts; the last record wins when a page repeats a key."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        cls = type(r)
        if cls not in _ROW_GETTERS:
            names = data_columns(cls)
            _ROW_GETTERS[cls] = (names, attrgetter(*names))
        names, getter = _ROW_GETTERS[cls]
        out[(r.source, r.source_id)] = dict(zip(names, getter(r), strict=True))
    return list(out.values())


def _insert(conn: Connection, table: Table) -> Insert:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"warehouse dialect {dialect!r} is not supported (use SQLite or PostgreSQL)")


def _upsert_statement(conn: Connection, table: Table, columns: Sequence[str], ins: Insert | None = None):
    ins = ins if ins is not None else _insert(conn, table)
    changing = [c for c in columns if c not in ("source", "source_id")]
    excluded = ins.excluded
    return ins.on_conflict_do_update(
        index_elements=["source", "source_id"],
        set_={**{c: excluded[c] for c in changing}, "updated_at": CURRENT_TIMESTAMP},
        where=or_(*(table.c[c].is_distinct_from(excluded[c]) for c in changing)),
    )


def upsert(conn: Connection, records: Sequence[Record]) -> int:
    """Upsert one page of records of one entity; returns rows inserted or changed."""
    if not records:
        return 0
    table = ENTITY_TABLES[type(records[0]).entity]
    if conn.dialect.name == "sqlite":
        return _upsert_sqlite(conn, table, records)
    rows = _rows(records)
    stmt = _upsert_statement(conn, table, list(rows[0]))
    result = conn.execute(stmt, rows)
    return max(result.rowcount, 0)


_SQLITE_UPSERTS: dict[tuple[str, type], tuple[str, attrgetter, list[Any]]] = {}


def _upsert_sqlite(conn: Connection, table: Table, records: Sequence[Record]) -> int:
    """The same statement and values as ``conn.execute(stmt, rows)``, without its per-row overhead.

    The statement is compiled once per table; each value passes the column type's own bind processor
    (what SQLAlchemy applies), then one driver executemany of plain tuples. SQLAlchemy's per-row
    parameter construction was about as costly as SQLite's own work on a page of worklogs.
    """
    cls = type(records[0])
    key = (table.name, cls)
    if key not in _SQLITE_UPSERTS:
        names = data_columns(cls)
        compiled = _upsert_statement(conn, table, names).compile(dialect=conn.dialect, column_keys=names)
        order = list(compiled.positiontup or ())
        if sorted(order) != sorted(names):  # an unexpected bind: refuse rather than write the wrong columns
            raise AssertionError(f"upsert of {table.name}: binds {order} are not its columns")
        procs = [table.c[n].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for n in order]
        _SQLITE_UPSERTS[key] = (compiled.string, attrgetter(*order), procs)
    sql, getter, procs = _SQLITE_UPSERTS[key]
    last = {(r.source, r.source_id): r for r in records}  # the last record wins when a page repeats a key
    columns = list(zip(*map(getter, last.values()), strict=True))
    for i, p in enumerate(procs):
        if p is not None:
            columns[i] = tuple(map(p, columns[i]))
    result = conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
    return max(result.rowcount, 0)


def upsert_each(conn: Connection, records: Sequence[Record]) -> tuple[int, list[Rejected]]:
    """``upsert``, except that records the database refuses are returned as ``Rejected`` and the rest load.

    The last line of defence behind ``model.validate``: a page runs in a savepoint; when the database
    refuses it, the page is halved until each refused record stands alone (a few statements per bad
    record), and each is quarantined with the database's own one-line reason.
    """
    unique = list({(r.source, r.source_id): r for r in records}.values())  # halves must not share a key
    written, refused = _bisect(conn, partial(upsert, conn), unique)
    return written, [_refusal(r, validate.locator(r), why) for r, why in refused]


def _refusal(record: Record, locator: str, why: str) -> Rejected:
    return Rejected(
        source=record.source,
        locator=locator,
        reason=f"refused by the database: {why}",
        raw=validate.describe(record),
    )


class _Refused(Exception):
    """A batch the database refused for its data (not for its connection or our SQL)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _isolating(conn: Connection, store: Callable[[Sequence[T]], int], items: Sequence[T]) -> int:
    """``store(items)`` in a savepoint: all of it, or none of it and ``_Refused``."""
    try:
        with conn.begin_nested():
            return store(items)
    except (sa_exc.StatementError, UnicodeError, OverflowError) as e:
        if isinstance(e, sa_exc.DBAPIError) and not isinstance(e, sa_exc.DataError | sa_exc.IntegrityError):
            raise  # the connection, a lock or our SQL: not any record's fault
        raise _Refused(_one_line(e)) from e


def _bisect(
    conn: Connection, store: Callable[[Sequence[T]], int], items: Sequence[T]
) -> tuple[int, list[tuple[T, str]]]:
    """Store what the database accepts of ``items`` (in one statement when it accepts them all); returns
    the count stored and each refused item with the database's reason."""
    try:
        return _isolating(conn, store, items), []
    except _Refused as e:
        if len(items) == 1:
            return 0, [(items[0], e.why)]
    half = len(items) // 2
    n1, bad1 = _bisect(conn, store, items[:half])
    n2, bad2 = _bisect(conn, store, items[half:])
    return n1 + n2, bad1 + bad2


def _one_line(e: BaseException) -> str:
    """The database's (or driver's) own message, first line: no SQL, no parameters."""
    orig = getattr(e, "orig", None) or e
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def mark_deleted(
    conn: Connection,
    entity: str,
    source: str,
    source_ids: Sequence[str],
    at: datetime,
    reason: str = DELETED_AT_SOURCE,
) -> int:
    """Set ``deleted_at`` and why on the rows a source reported gone; rows stay for history and audit."""
    if not source_ids:
        return 0
    table = ENTITY_TABLES[entity]
    stmt = (
        update(table)
        .where(table.c.source == source, table.c.source_id.in_(source_ids), table.c.deleted_at.is_(None))
        .values(deleted_at=at, deleted_reason=reason, updated_at=CURRENT_TIMESTAMP)
    )
    return max(conn.execute(stmt).rowcount, 0)


def quarantine_rows(conn: Connection, stream: str, rejects: Sequence[Rejected], run_id: int | None) -> int:
    """Record bad input; seeing the same bad line again adds nothing."""
    if not rejects:
        return 0
    text = validate.printable  # quarantine holds source text too: spelt out, so every dialect stores it
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rejects:
        key = (text(r.source)[:255], text(r.locator)[:1000], text(r.field or "")[:255])
        rows[key] = {
            "source": key[0],
            "stream": stream,
            "locator": key[1],
            "field": key[2],
            "reason": text(r.reason),
            "raw": None if r.raw is None else text(r.raw),
            "run_id": run_id,
        }
    stmt = _insert(conn, quarantine).on_conflict_do_nothing()
    conn.execute(stmt, list(rows.values()))
    return len(rows)


class Merged(NamedTuple):
    """What merging one unit did: rows inserted or changed, rows retired, the retired rows by the file
    they had been loaded from (the unit itself where the table records no file), and how many of the
    unit's rows reached the stage through PostgreSQL's ``COPY`` rather than an INSERT."""

    written: int
    deleted: int
    retired: dict[str, int]
    copied: int = 0


class StagedLoad:
    """Load one whole unit (an export file, a full listing) through a temporary table, then merge it.

    Lets the database do what Python would need memory for: spotting duplicate keys across a
    million-line file (the stage's unique key refuses them as they arrive), merging in one set-based
    statement, and marking rows of the replaced scope (the file's earlier version, or its fiscal periods)
    that the new unit no longer contains as deleted.

    On PostgreSQL the stage is filled by ``COPY`` (``copy=False``: by INSERT, as on SQLite): one stream
    of rows instead of a statement per row, what lets PostgreSQL keep up with SQLite's in-process writes.
    """

    def __init__(self, conn: Connection, record_type: type[Record], copy: bool = True) -> None:
        self.conn = conn
        self.target = ENTITY_TABLES[record_type.entity]
        self.columns = data_columns(record_type)
        self.stage = Table(
            f"stage_{record_type.entity}",
            MetaData(),
            Column("line_no", Integer, nullable=False),
            *(Column(c, self.target.c[c].type) for c in self.columns),
            UniqueConstraint("source_id"),
            prefixes=["TEMPORARY"],
        )
        if conn.dialect.name == "sqlite":
            # Not ``checkfirst``: its read of the main schema would pin the transaction to a snapshot, and
            # once another connection commits (the run lock's heartbeat) the merge could not write.
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{self.stage.name}")
        else:
            self.stage.drop(conn, checkfirst=True)
        self.stage.create(conn)
        self._getter = attrgetter(*self.columns)
        self.rows_staged = self.rows_copied = 0
        self.copying = copy and conn.dialect.name == "postgresql"
        quote = conn.dialect.identifier_preparer.quote
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        names = ["line_no", *self.columns]
        into = f"{quote(self.stage.name)} ({', '.join(map(quote, names))})"
        self._insert_sql = (
            f"INSERT INTO {into} VALUES ({', '.join([mark] * len(names))}) ON CONFLICT (source_id) DO NOTHING"
        )
        self._copy_sql = f"COPY {into} FROM STDIN"

    def add(self, records: Sequence[tuple[int, str, Record]]) -> list[Rejected]:
        """Stage ``(line_no, locator, record)`` triples; returns what to quarantine: lines refused (by
        ``model.validate``, by the database, or as duplicate keys) and notes of repaired ones.

        One driver executemany of plain tuples: SQLAlchemy's per-row parameter processing was most of
        the load time. Only a batch that lost rows to the unique key is looked at again.
        """
        if not records:
            return []
        checked = validate.check([r for _, _, r in records], [loc for _, loc, _ in records])
        if checked.rejected:
            records = [
                (records[i][0], records[i][1], r) for i, r in zip(checked.index, checked.records, strict=True)
            ]
        inserted, bad = _bisect(self.conn, self._stage, records)
        refused = [_refusal(r, loc, why) for (_, loc, r), why in bad]
        if bad:
            gone = {id(line) for line, _ in bad}
            records = [line for line in records if id(line) not in gone]
        self.rows_staged += inserted
        duplicates = self._duplicates(records) if inserted < len(records) else []
        return checked.rejected + refused + duplicates

    def _stage(self, records: Sequence[tuple[int, str, Record]]) -> int:
        getter = self._getter
        rows = [(n, *getter(r)) for n, _, r in records]
        if self.copying and self._copy(rows):
            return len(rows)
        return self.conn.exec_driver_sql(self._insert_sql, rows).rowcount

    def _copy(self, rows: list[tuple[Any, ...]]) -> bool:
        """``COPY`` the rows into the stage, in a savepoint; False when one repeats a staged key.

        COPY cannot skip a row, so a batch holding a duplicate line is left to the INSERT, whose
        ``ON CONFLICT DO NOTHING`` keeps the first line and lets ``_duplicates`` name the others.
        A row PostgreSQL refuses for its data refuses the batch, which ``_bisect`` then halves.
        """
        from psycopg import errors  # PostgreSQL only: psycopg is the ``postgres`` extra

        try:
            with (
                self.conn.begin_nested(),
                self.conn.connection.driver_connection.cursor() as cur,
                cur.copy(self._copy_sql) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except errors.UniqueViolation:
            return False
        except (errors.DataError, errors.IntegrityError) as e:
            raise _Refused(_one_line(e)) from e
        self.rows_copied += len(rows)
        return True

    def _duplicates(self, records: Sequence[tuple[int, str, Record]]) -> list[Rejected]:
        s = self.stage
        keys = list({r.source_id for _, _, r in records})
        first: dict[str, int] = {}
        for i in range(0, len(keys), 500):
            chunk = select(s.c.source_id, s.c.line_no).where(s.c.source_id.in_(keys[i : i + 500]))
            first.update({key: line_no for key, line_no in self.conn.execute(chunk)})
        return [
            Rejected(
                source=r.source,
                locator=loc,
                field="source_id",
                raw=r.source_id,
                reason=f"duplicate line: same key as line {first[r.source_id]}",
            )
            for n, loc, r in records
            if first.get(r.source_id) != n
        ]

    def merge(self, unit: str, replace_scope: Sequence[str] = (), source: str | None = None) -> Merged:
        """Upsert the staged rows of ``unit`` (a file), then retire rows gone from the replaced scope.

        ``replace_scope`` names target columns: rows of ``source`` whose scope values occur in this unit
        but whose keys do not are marked deleted, each saying why. ``("file",)``: the lines this file's
        earlier version loaded; ``("fiscal_period",)``: every line of its periods, whichever file loaded
        it, so the result counts the retired lines per file they were loaded from.
        """
        conn, s, t = self.conn, self.stage, self.target
        scoped = bool(replace_scope) and source is not None and self._scope_loaded(replace_scope, source)
        # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
        staged = select(*(s.c[c] for c in self.columns)).where(true())
        merge = _upsert_statement(conn, t, self.columns, _insert(conn, t).from_select(self.columns, staged))
        written = max(conn.execute(merge).rowcount, 0)
        retired: Counter[str] = Counter()
        if scoped and self._others_in_scope(replace_scope, source):
            scope = tuple_(*(t.c[c] for c in replace_scope))
            in_scope = scope.in_(select(*(s.c[c] for c in replace_scope)).distinct())
            still_there = exists().where(s.c.source_id == t.c.source_id)
            retire = (
                update(t)
                .where(t.c.source == source, t.c.deleted_at.is_(None), in_scope, ~still_there)
                .values(
                    deleted_at=datetime.now(UTC),
                    deleted_reason=self._why(unit, replace_scope),
                    updated_at=CURRENT_TIMESTAMP,
                )
            )
            if "file" in t.c:
                retired.update(f or "(no file)" for f in conn.execute(retire.returning(t.c.file)).scalars())
            elif (n := conn.execute(retire).rowcount) > 0:
                retired[unit] = n
        self.stage.drop(conn)
        return Merged(written, retired.total(), dict(retired), self.rows_copied)

    def _why(self, unit: str, replace_scope: Sequence[str]) -> ColumnElement[str]:
        """A retired row's ``deleted_reason``: its file's new version, or the unit and scope values
        (``replaced by cji3_P05.csv (fiscal period 2026-05)``) that replaced it."""
        if "file" in replace_scope:
            return literal(f"not in {unit}'s new version", Text)
        why: ColumnElement[str] = literal(f"replaced by {unit} (", Text)
        for i, c in enumerate(replace_scope):
            label = f"{', ' if i else ''}{c.replace('_', ' ')} "  # fiscal_period → "fiscal period "
            why = why + literal(label, Text) + cast(self.target.c[c], Text)
        return why + literal(")", Text)

    def _scope_loaded(self, replace_scope: Sequence[str], source: str) -> bool:
        """Whether the target holds any row of the unit's scope before the merge: only such a row can
        be gone. One index probe per scope value, where counting them after the merge would count the
        merged rows too (on PostgreSQL a heap visit each, as they are new): the usual first load of a
        file or of new periods skips both."""
        s, t = self.stage, self.target
        values = select(*(s.c[c] for c in replace_scope)).distinct()
        loaded = exists().where(t.c.source == source, tuple_(*(t.c[c] for c in replace_scope)).in_(values))
        return bool(self.conn.execute(select(loaded)).scalar_one())

    def _others_in_scope(self, replace_scope: Sequence[str], source: str) -> bool:
        """Whether the target holds rows of the replaced scope besides the ones just merged.

        Only then can a row be gone. Counting the target's index entries for the unit's scope values
        costs a fraction of asking, row by row, whether each is still staged: the usual case (a first
        load, or a re-export that drops nothing) skips the retiring pass.
        """
        s, t = self.stage, self.target
        values = select(*(s.c[c] for c in replace_scope)).distinct().subquery()
        in_target = (
            select(func.count())
            .select_from(t)
            .join(values, and_(*(t.c[c] == values.c[c] for c in replace_scope)))
            .where(t.c.source == source)
        )
        staged = select(func.count()).where(
            s.c.source == source, *(s.c[c].is_not(None) for c in replace_scope)
        )
        return self.conn.execute(select(in_target.scalar_subquery() > staged.scalar_subquery())).scalar_one()
