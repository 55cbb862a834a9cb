"""Engine creation and schema migration."""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

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
        # preserve_rowcount: INSERT .. ON CONFLICT row counts feed sync_run (SQLAlchemy drops them).
        engine = create_engine(parsed, execution_options={"preserve_rowcount": True})
    except (exc.ArgumentError, ValueError, ImportError) as e:
        raise WarehouseError(
            f"warehouse URL {masked(url)} is not usable ({type(e).__name__}): write it as"
            " dialect://user:password@host/database, with @ : / % in the password percent-encoded"
            " (%40 %3A %2F %25)"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take control so a transaction spans reads too.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


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
