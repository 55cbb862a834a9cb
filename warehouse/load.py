"""Bulk writes: page upserts, deletion marks and staged whole-file merges.

Upserts use the dialect's ``INSERT .. ON CONFLICT (source, source_id) DO UPDATE`` run as one driver
executemany with no RETURNING (docs/architecture.md, "Running it"). The update only fires when some column is
really different (``IS DISTINCT FROM``), so re-loading unchanged data writes nothing and ``updated_at``
keeps meaning "last real change".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    unit's rows reached the warehouse through PostgreSQL's ``COPY`` rather than an INSERT."""

    written: int
    deleted: int
    retired: dict[str, int]
    copied: int = 0


class StagedLoad:
    """Load one whole unit (an export file, a full listing) through a temporary stage merged at the end;
    on PostgreSQL, new rows straight into the table.

    Lets the database do what Python would need memory for on a million-line file:

    - duplicate lines: every line's key goes into a narrow temporary table whose unique key refuses a
      repeat as it arrives; the repeat is quarantined naming the line it repeats;
    - writing: rows are staged and merged in one set-based upsert. On PostgreSQL, while no line's key is
      in the table yet (a first load, new periods), each batch goes straight into it, one write per row
      instead of two; the first batch that meets a key the table holds (a file's new version) turns the
      rest of the unit to the stage. SQLite keeps the stage: it has one writer per file, and the stage
      holds that lock for the merge alone, not for the whole file;
    - replacing: rows of the replaced scope (the file's earlier version, or its fiscal periods) whose keys
      the unit no longer holds are marked deleted, each saying why.

    On PostgreSQL rows and keys are written by ``COPY`` (``copy=False``: by INSERT, as on SQLite): one
    stream of rows instead of a statement per row. Writing new rows once instead of twice (stage, then
    table) is what let PostgreSQL keep up with SQLite's in-process writes; see BENCHMARKS.md.
    """

    def __init__(
        self,
        conn: Connection,
        record_type: type[Record],
        replace_scope: Sequence[str] = (),
        copy: bool = True,
    ) -> None:
        self.conn = conn
        self.target = ENTITY_TABLES[record_type.entity]
        self.columns = data_columns(record_type)
        self.replace_scope = tuple(replace_scope)
        name = f"stage_{record_type.entity}"
        # Straight in while no line has met a key the table holds, on PostgreSQL only: SQLite has one writer
        # per file, and writing the table (not a temporary one) from the first batch would hold that lock
        # for the whole file, where the stage holds it for the merge alone.
        self.direct = conn.dialect.name == "postgresql"
        key = Column("source_id", self.target.c.source_id.type, nullable=False)
        data = [Column(c, self.target.c[c].type) for c in self.columns if c != "source_id"]
        line_no, unique = Column("line_no", Integer, nullable=False), UniqueConstraint("source_id")
        if self.direct:  # keys in a narrow table of their own: rows may go straight into the table
            self.keys = Table(f"{name}_keys", MetaData(), line_no, key, unique, prefixes=["TEMPORARY"])
            key = Column("source_id", self.target.c.source_id.type, nullable=False)
            self.stage = Table(name, MetaData(), key, *data, prefixes=["TEMPORARY"])
        else:  # one stage: each row once, with its line number, its key refusing repeats as they come
            self.stage = Table(name, MetaData(), line_no, key, *data, unique, prefixes=["TEMPORARY"])
            self.keys = self.stage
        for table in self._tables():
            if conn.dialect.name == "sqlite":
                # Not ``checkfirst``: its read of the main schema would pin the transaction to a snapshot,
                # and once another connection commits (the run lock's heartbeat) the load could not write.
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table.name}")
            else:
                table.drop(conn, checkfirst=True)
            table.create(conn)
        self._getter = attrgetter(*self.columns)
        self._scope_of = attrgetter(*self.replace_scope) if self.replace_scope else None
        self.rows_staged = self.rows_copied = 0  # rows loaded (either way), rows written by COPY
        self.source: str | None = None
        self._in_stage = 0
        self._scopes: set[Any] = set()  # the unit's scope values
        self._probed: set[Any] = set()  # those already looked for in the table
        self._scope_loaded = False  # some scope value had rows in the table before this unit
        self._scoped_rows = 0  # the unit's rows that have every scope value
        self.copying = copy and conn.dialect.name == "postgresql"
        quote = conn.dialect.identifier_preparer.quote
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"

        def into(table: Table, names: Sequence[str]) -> str:
            return f"{quote(table.name)} ({', '.join(map(quote, names))})"

        def values(names: Sequence[str]) -> str:
            return f"VALUES ({', '.join([mark] * len(names))})"

        key_names = ("line_no", "source_id")
        self._keys_sql = (
            f"INSERT INTO {into(self.keys, key_names)} {values(key_names)} ON CONFLICT DO NOTHING"
        )
        self._keys_copy = f"COPY {into(self.keys, key_names)} FROM STDIN"
        self._target_sql = f"INSERT INTO {into(self.target, self.columns)} {values(self.columns)}"
        self._target_copy = f"COPY {into(self.target, self.columns)} FROM STDIN"
        self._stage_copy = f"COPY {into(self.stage, self.columns)} FROM STDIN"
        if self.keys is self.stage:
            names = ["line_no", *self.columns]
            self._stage_sql = (
                f"INSERT INTO {into(self.stage, names)} {values(names)} ON CONFLICT (source_id) DO NOTHING"
            )
        else:
            self._stage_sql = f"INSERT INTO {into(self.stage, self.columns)} {values(self.columns)}"

    def _tables(self) -> list[Table]:
        return [self.stage] if self.keys is self.stage else [self.keys, self.stage]

    def add(self, records: Sequence[tuple[int, str, Record]]) -> list[Rejected]:
        """Load ``(line_no, locator, record)`` triples; returns what to quarantine: lines refused (by
        ``model.validate``, by the database, or as duplicate keys) and notes of repaired ones.

        One driver executemany (or COPY) of plain tuples per table: SQLAlchemy's per-row parameter
        processing was most of the load time. Only a batch that repeats a key is looked at again.
        """
        if not records:
            return []
        checked = validate.check([r for _, _, r in records], [loc for _, loc, _ in records])
        if checked.rejected:
            records = [
                (records[i][0], records[i][1], r) for i, r in zip(checked.index, checked.records, strict=True)
            ]
        if self.keys is self.stage:  # SQLite: the stage's key finds the repeats as they are staged
            loaded, bad = _bisect(self.conn, self._stage_lines, records)
            records = _without(records, bad)
            records, duplicates = self._repeats(records) if loaded < len(records) else (records, [])
            self._scopes |= self._values(records)
        else:
            records, duplicates = self._claim_keys(records)
            self._probe_scopes(self._values(records))  # before the rows go straight in
            loaded, bad = _bisect(self.conn, self._write, records)
            if bad:  # a refused line's key is free again: a later line with it is no duplicate
                k = self.keys.c.source_id
                for chunk in _chunks(sorted({line[2].source_id for line, _ in bad})):
                    self.conn.execute(self.keys.delete().where(k.in_(chunk)))
                records = _without(records, bad)
            self._scopes |= self._values(records)  # a refused line's period is not the unit's to replace
        if records and self._scope_of is not None:
            scopes = map(self._scope_of, (r for _, _, r in records))
            self._scoped_rows += sum(None not in (v if isinstance(v, tuple) else (v,)) for v in scopes)
        self.rows_staged += loaded
        refused = [_refusal(r, loc, why) for (_, loc, r), why in bad]
        return checked.rejected + refused + duplicates

    def _claim_keys(
        self, records: Sequence[tuple[int, str, Record]]
    ) -> tuple[Sequence[tuple[int, str, Record]], list[Rejected]]:
        """Claim each line's key for this unit: the lines whose key is new, and the repeats to quarantine."""
        rows = [(n, r.source_id) for n, _, r in records]
        if self.copying and self._copy(self._keys_copy, rows):
            return records, []
        if self.conn.exec_driver_sql(self._keys_sql, rows).rowcount == len(rows):
            return records, []
        return self._repeats(records)

    def _repeats(
        self, records: Sequence[tuple[int, str, Record]]
    ) -> tuple[Sequence[tuple[int, str, Record]], list[Rejected]]:
        """The lines that hold their key first, and the others as repeats to quarantine, naming the first."""
        first = self._first_lines({r.source_id for _, _, r in records})
        kept = [line for line in records if first[line[2].source_id] == line[0]]
        duplicates = [
            Rejected(
                source=r.source,
                locator=loc,
                field="source_id",
                raw=r.source_id,
                reason=f"duplicate line: same key as line {first[r.source_id]}",
            )
            for n, loc, r in records
            if first[r.source_id] != n
        ]
        return kept, duplicates

    def _first_lines(self, keys: set[str]) -> dict[str, int]:
        k = self.keys.c
        first: dict[str, int] = {}
        for chunk in _chunks(sorted(keys)):
            rows = self.conn.execute(select(k.source_id, k.line_no).where(k.source_id.in_(chunk)))
            first.update((key, line_no) for key, line_no in rows)
        return first

    def _values(self, records: Sequence[tuple[int, str, Record]]) -> set[Any]:
        if not records:
            return set()
        self.source = self.source or records[0][2].source
        return set(map(self._scope_of, (r for _, _, r in records))) if self._scope_of else set()

    def _probe_scopes(self, values: set[Any]) -> None:
        """Whether the table held rows of the unit's scope values before the unit wrote any: only then
        can a row be gone. One index probe per value (a file has a few periods), each value once, and
        before the unit's first row of it is written (SQLite: at the merge, as an earlier read there would
        pin the transaction to a snapshot another connection's commit makes stale)."""
        new = values - self._probed
        self._probed |= new
        if self._scope_loaded or not new:
            return
        t = self.target
        scope = tuple_(*(t.c[c] for c in self.replace_scope))
        for chunk in _chunks(sorted(new, key=repr)):
            values = [v if isinstance(v, tuple) else (v,) for v in chunk]
            held = exists().where(t.c.source == self.source, scope.in_(values))
            if self.conn.execute(select(held)).scalar_one():
                self._scope_loaded = True
                return

    def _stage_lines(self, records: Sequence[tuple[int, str, Record]]) -> int:
        """Stage line numbers and rows; returns how many were new keys (a repeat is skipped)."""
        getter = self._getter
        n = self.conn.exec_driver_sql(self._stage_sql, [(n, *getter(r)) for n, _, r in records]).rowcount
        self._in_stage += n
        return n

    def _write(self, records: Sequence[tuple[int, str, Record]]) -> int:
        """Write a batch: straight into the table while its keys are new there, else into the stage."""
        rows = list(map(self._getter, (r for _, _, r in records)))
        if self.direct and self._into(self._target_copy, self._target_sql, rows):
            return len(rows)
        self.direct = False  # a key the table holds: this batch and the rest merge through the stage
        self._into(self._stage_copy, self._stage_sql, rows)  # the stage has no key to meet
        self._in_stage += len(rows)
        return len(rows)

    def _into(self, copy_sql: str, insert_sql: str, rows: list[tuple[Any, ...]]) -> bool:
        """Rows into a table by COPY (or INSERT), in a savepoint; False when one has a key it holds."""
        if self.copying:
            if not self._copy(copy_sql, rows):
                return False
            self.rows_copied += len(rows)
            return True
        try:
            with self.conn.begin_nested():
                self.conn.exec_driver_sql(insert_sql, rows)
        except sa_exc.IntegrityError as e:
            if getattr(e.orig, "sqlstate", None) != "23505":  # not unique_violation: a NOT NULL, a CHECK
                raise
            return False
        return True

    def _copy(self, sql: str, rows: list[tuple[Any, ...]]) -> bool:
        """``COPY`` the rows, in a savepoint; False when one repeats a key the table holds.

        COPY cannot skip a row: the caller then INSERTs (keys) or stages (rows) instead. A row PostgreSQL
        refuses for its data refuses the batch, which ``_bisect`` then halves.
        """
        import psycopg  # PostgreSQL only: psycopg is the ``postgres`` extra
        from psycopg import errors

        try:
            with (
                self.conn.begin_nested(),
                self.conn.connection.driver_connection.cursor() as cur,
                cur.copy(sql) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except errors.UniqueViolation:
            return False
        except (errors.DataError, errors.IntegrityError) as e:
            raise _Refused(_one_line(e)) from e
        except psycopg.Error as e:  # not the data's fault: fail as a statement SQLAlchemy ran would
            raise sa_exc.DBAPIError.instance(sql, None, e, psycopg.Error) from e
        return True

    def merge(self, unit: str) -> Merged:
        """Upsert the staged rows into the table, then retire rows of the unit's scope it no longer holds.

        ``replace_scope`` (given at construction) names target columns: rows of the unit's source whose
        scope values occur in this unit but whose keys do not are marked deleted, each saying why.
        ``("file",)``: the lines this file's earlier version loaded; ``("fiscal_period",)``: every line of
        its periods, whichever file loaded it, so the result counts the retired lines per file they were
        loaded from.
        """
        conn, s, t = self.conn, self.stage, self.target
        written = self.rows_staged - self._in_stage
        if self._scope_of is not None:
            self._probe_scopes(self._scopes)  # the values no row of the unit has reached the table with yet
        if self._in_stage:
            # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
            staged = select(*(s.c[c] for c in self.columns)).where(true())
            upsert = _upsert_statement(
                conn, t, self.columns, _insert(conn, t).from_select(self.columns, staged)
            )
            written += max(conn.execute(upsert).rowcount, 0)
        retired: Counter[str] = Counter()
        if self._scope_loaded and self._others_in_scope():
            scope = tuple_(*(t.c[c] for c in self.replace_scope))
            values = [v if isinstance(v, tuple) else (v,) for v in self._scopes]
            still_there = exists().where(self.keys.c.source_id == t.c.source_id)
            retire = (
                update(t)
                .where(t.c.source == self.source, t.c.deleted_at.is_(None), scope.in_(values), ~still_there)
                .values(
                    deleted_at=datetime.now(UTC),
                    deleted_reason=self._why(unit),
                    updated_at=CURRENT_TIMESTAMP,
                )
            )
            if "file" in t.c:
                retired.update(f or "(no file)" for f in conn.execute(retire.returning(t.c.file)).scalars())
            elif (n := conn.execute(retire).rowcount) > 0:
                retired[unit] = n
        for table in self._tables():
            table.drop(conn)
        return Merged(written, retired.total(), dict(retired), self.rows_copied)

    def _why(self, unit: str) -> ColumnElement[str]:
        """A retired row's ``deleted_reason``: its file's new version, or the unit and scope values
        (``replaced by cji3_P05.csv (fiscal period 2026-05)``) that replaced it."""
        if "file" in self.replace_scope:
            return literal(f"not in {unit}'s new version", Text)
        why: ColumnElement[str] = literal(f"replaced by {unit} (", Text)
        for i, c in enumerate(self.replace_scope):
            label = f"{', ' if i else ''}{c.replace('_', ' ')} "  # fiscal_period → "fiscal period "
            why = why + literal(label, Text) + cast(self.target.c[c], Text)
        return why + literal(")", Text)

    def _others_in_scope(self) -> bool:
        """Whether the table holds rows of the unit's scope values besides the unit's own rows.

        Only then can a row be gone. Counting the table's index entries for those values costs a
        fraction of asking, row by row, whether each is still the unit's: the usual case (a re-export
        that drops nothing) skips the retiring pass.
        """
        t = self.target
        values = [v if isinstance(v, tuple) else (v,) for v in self._scopes]
        in_target = (
            select(func.count())
            .select_from(t)
            .where(t.c.source == self.source, tuple_(*(t.c[c] for c in self.replace_scope)).in_(values))
        )
        return self.conn.execute(in_target).scalar_one() > self._scoped_rows


def _without(
    records: Sequence[tuple[int, str, Record]], bad: Sequence[tuple[tuple[int, str, Record], str]]
) -> Sequence[tuple[int, str, Record]]:
    if not bad:
        return records
    gone = {id(line) for line, _ in bad}
    return [line for line in records if id(line) not in gone]


def _chunks(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]
