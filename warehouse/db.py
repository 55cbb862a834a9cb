"""Engine creation and schema migration."""

from __future__ import annotations

import os
import sqlite3
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, exc

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


def resolve_url(explicit: str | None = None, configured: str | None = None) -> str:
    """The warehouse URL, first found: ``--database-url``, ``PMO_WAREHOUSE_URL``, the configuration
    file's ``[warehouse] url``, then a SQLite file in the working directory."""
    return explicit or os.environ.get("PMO_WAREHOUSE_URL") or configured or DEFAULT_URL


def make_engine(url: str | None = None) -> Engine:
    url = resolve_url(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # preserve_rowcount: INSERT .. ON CONFLICT row counts feed sync_run (SQLAlchemy drops them by default).
    engine = create_engine(url, execution_options={"preserve_rowcount": True})
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

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def describe(engine: Engine) -> str:
    """The URL with the password hidden, for logs and summaries."""
    return engine.url.render_as_string(hide_password=True)


__all__ = ["DEFAULT_URL", "describe", "exc", "make_engine", "resolve_url", "upgrade"]
