"""Engine creation and schema migration."""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

from model.redact import redact, register

DEFAULT_URL = "sqlite:///pmo_warehouse.db"

# SQLite has no DECIMAL; SQLAlchemy stores Numeric as REAL and warns on every read. Amounts are
# Numeric(18,4) and exact on PostgreSQL; on SQLite REAL is what BI tools read anyway.
warnings.filterwarnings("ignore", message=r"Dialect sqlite\+pysqlite does \*not\* support Decimal")


def _sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime writes, so raw driver writes compare equal to ORM ones."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


# Raw executemany paths (the staged loads) hand Python values straight to sqlite3: teach it ours.
sqlite3.register_adapter(Decimal, str)
sqlite3.register_adapter(datetime, _sqlite_datetime)
sqlite3.register_adapter(date, date.isoformat)


def resolve_url(explicit: str | None = None, configured: str | Callable[[], str | None] | None = None) -> str:
    """The warehouse URL, first found: ``--database-url``, ``PMO_WAREHOUSE_URL``, the configuration
    file's ``[warehouse] url``, then a SQLite file in the working directory.

    ``configured`` may be a function, called only when needed: a URL kept in an environment variable or
    a Prefect Secret block is then read only when neither of the first two names the warehouse.
    """
    found = explicit or os.environ.get("PMO_WAREHOUSE_URL")
    if not found and callable(configured):
        configured = configured()
    return found or configured or DEFAULT_URL


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened; the message is one line and shows no password."""


def make_engine(url: str | None = None) -> Engine:
    url = resolve_url(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        parsed = _parse(url)
        register(parsed.password)  # masked in any error text from here on
        sqlite = parsed.get_backend_name() == "sqlite"
        # preserve_rowcount: INSERT .. ON CONFLICT row counts feed sync_run (SQLAlchemy drops them).
        engine = create_engine(
            parsed,
            execution_options={"preserve_rowcount": True},
            connect_args={"factory": TakingTurns} if sqlite else {},
        )
    except (exc.ArgumentError, ValueError, ImportError) as e:
        raise WarehouseError(
            f"warehouse URL {masked(url)} is not usable ({type(e).__name__}): write it as"
            " dialect://user:password@host/database, with @ : / % in the password percent-encoded"
            " (%40 %3A %2F %25)"
        ) from None
    if engine.dialect.name == "sqlite":
        turn = _turn_of(parsed.database)
        event.listen(engine, "connect", lambda conn, record: _sqlite_pragmas(conn, turn))
        # pysqlite's own transaction handling defers BEGIN; take control so a transaction spans reads too.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def _sqlite_pragmas(dbapi_conn: TakingTurns, turn: Turn) -> None:
    dbapi_conn.turn = turn
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Turn:
    """Whose turn it is to hold a transaction on one SQLite file in this process: one thread at a time,
    which may take it again (a second connection of the same thread), and which any thread may give back.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._taken = 0

    def take(self) -> None:
        me = threading.get_ident()
        with self._cond:
            while self._owner not in (None, me):
                self._cond.wait()
            self._owner, self._taken = me, self._taken + 1

    def give(self) -> None:
        with self._cond:
            self._taken -= 1
            if self._taken == 0:
                self._owner = None
                self._cond.notify_all()


_turns: dict[str, Turn] = {}
_turns_lock = threading.Lock()


def _turn_of(database: str | None) -> Turn:
    """The one ``Turn`` of a SQLite file in this process, whichever engine opens it (a flow opens one per
    task); an in-memory database is private to its connection, so it gets a turn of its own."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return Turn()
    with _turns_lock:
        return _turns.setdefault(os.path.realpath(database), Turn())


class TakingTurns(sqlite3.Connection):
    """A SQLite connection whose transactions take turns with the other connections of this process.

    Why: SQLite has one writer, and WAL with ``busy_timeout`` makes a writer wait for another, but not a
    transaction that has already read: once another connection commits after that read, its snapshot is
    stale and its first write fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT; waiting
    cannot help). A stream run reads before it writes (its watermark, the ids it knows), so concurrent
    streams would fail that way. Each transaction therefore takes the file's ``Turn`` at its first
    statement after ``BEGIN`` and gives it back once committed or rolled back: transactions of this
    process run one after another, while the HTTP calls between them (no statement, no turn) overlap.
    Other processes are still kept apart by SQLite's locks and ``busy_timeout``.
    """

    turn: Turn | None = None
    _holding = False

    def cursor(self, factory: type[sqlite3.Cursor] | None = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _TurnCursor)

    def take_turn(self) -> None:
        """Before a statement: inside a transaction that has no turn yet, wait for it."""
        if self.in_transaction and not self._holding and self.turn is not None:
            self.turn.take()
            self._holding = True

    def _give_turn(self) -> None:
        if self._holding and self.turn is not None:
            self._holding = False
            self.turn.give()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_turn()


class _TurnCursor(sqlite3.Cursor):
    connection: TakingTurns

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.connection.take_turn()
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self.connection.take_turn()
        return super().executemany(sql, parameters)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` (what ``pmo db upgrade`` and every flow run do)."""
    from alembic import command
    from alembic.config import Config

    # The URL never goes into Alembic's Config: its ConfigParser would read a ``%`` of a percent-encoded
    # password as interpolation and fail, printing the URL. env.py migrates the connection handed over.
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with connect(engine) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def connect(engine: Engine) -> Connection:
    """A connection, or a one-line WarehouseError saying why none (wrong password, host down …)."""
    try:
        return engine.connect()
    except exc.DBAPIError as e:
        reason = " ".join(str(e.orig or e).split())  # the driver's words, on one line
        where = describe(engine)
        raise WarehouseError(f"cannot connect to the warehouse {where}: {redact(reason)}") from None


def masked(url: str) -> str:
    """A URL as text with its password hidden (also when it does not parse), for output and logs."""
    try:
        return _parse(url).render_as_string(hide_password=True)
    except (exc.ArgumentError, ValueError):
        return redact(url)


def _parse(url: str) -> URL:
    """SQLAlchemy's URL, refusing a raw ``@`` in the password (it would be read as part of the host)."""
    parsed = make_url(url)
    if "@" in (parsed.host or ""):
        raise ValueError("an @ in the host: a password with a raw @")
    return parsed


def describe(engine: Engine) -> str:
    """The URL with the password hidden, for logs and summaries."""
    return engine.url.render_as_string(hide_password=True)


__all__ = [
    "DEFAULT_URL",
    "WarehouseError",
    "connect",
    "describe",
    "exc",
    "make_engine",
    "masked",
    "resolve_url",
    "upgrade",
]
