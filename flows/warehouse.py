"""Which warehouse a run writes to, named without its password.

Prefect stores every flow parameter in its database and shows it in its UI, so flows take a *reference*
to the warehouse, never a URL with a password in it:

- ``None``: ``PMO_WAREHOUSE_URL``, else the configuration's ``[warehouse] url`` (``resolve_url``);
- ``env:NAME``: the URL is in the environment variable ``NAME`` of the worker;
- ``NAME`` or ``secret:NAME``: the URL is in the Prefect Secret block ``NAME``;
- a URL without a password (a SQLite file, PostgreSQL with peer or certificate authentication).

A URL with a password is refused: by the Prefect server before it stores a deployment run's parameters
(the parameter's schema carries ``REFERENCE``), and by the flow itself on a direct call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import Field
from sqlalchemy import Engine

from model.redact import redact, redact_logs
from warehouse.db import WarehouseError, make_engine, resolve_url, upgrade

EXIT_WAREHOUSE = 4  # the warehouse cannot be opened (wrong password, host down, unusable URL)
# Where Prefect's handlers hang: the console (root) and its API, which stores run logs in its database.
LOGGERS = ("", "prefect.flow_runs", "prefect.task_runs", "prefect.extra")

# env:NAME | [secret:]block-name | a URL whose user part has no ":password" (no lookaround: the Prefect
# server checks this pattern too, with an engine that has none).
REFERENCE = (
    r"^(env:[A-Za-z_][A-Za-z0-9_]*|(secret:)?[a-z0-9][a-z0-9-]*"
    r"|[A-Za-z][A-Za-z0-9+.-]*://([^:@/]*@)?[^@]*)$"
)
_REFERENCE = re.compile(REFERENCE)

WarehouseRef = Annotated[
    str | None,
    Field(
        pattern=REFERENCE,
        description="Prefect Secret block name, env:VARNAME, or a URL without password; "
        "default: PMO_WAREHOUSE_URL, then [warehouse] url of the configuration",
    ),
]


class WarehouseRefError(ValueError):
    """A warehouse reference that cannot be used; one line, no secret."""


def warehouse_url(ref: str | None) -> str | None:
    """The URL ``ref`` names (see the module docstring); ``None`` leaves the choice to the configuration."""
    if ref is None or not ref.strip():
        return None
    ref = ref.strip()
    if not _REFERENCE.match(ref):
        what = "a URL with a password is stored by Prefect with the run" if "://" in ref else "not a name"
        raise WarehouseRefError(
            f"warehouse: {what}; pass the name of a Prefect Secret block holding the URL, or env:VARNAME"
        )
    if "://" in ref:
        return ref
    if ref.startswith("env:"):
        return _env(ref.removeprefix("env:"), "warehouse")
    return _secret(ref.removeprefix("secret:"), "warehouse")


def open_for_flow(config: Any, ref: str | None, migrate: bool = True) -> Engine:
    """The engine of a flow's warehouse (migrated unless ``migrate`` is false), with its logs redacted."""
    redact_logs(*LOGGERS)
    engine = config.engine(warehouse_url(ref))
    if migrate:
        upgrade(engine)
    return engine


def open_for_cli(explicit: str | None, configured: str | Callable[[], str | None] | None = None) -> Engine:
    """A migrated engine for a command (the URL as ``resolve_url`` finds it), or one line on stderr (no
    traceback, no password): exit 2 when a configured reference cannot be read, 4 when the warehouse
    cannot be opened."""
    redact_logs(*LOGGERS)
    try:
        url = resolve_url(explicit, configured)
    except ValueError as e:  # ConfigError: { env = .. } unset, Secret block missing
        typer.echo(f"✗ {redact(str(e))}", err=True)
        raise typer.Exit(2) from None
    try:
        engine = make_engine(url)
        upgrade(engine)
    except WarehouseError as e:
        typer.echo(f"✗ {e}", err=True)
        raise typer.Exit(EXIT_WAREHOUSE) from None
    return engine


def _env(name: str, where: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise WarehouseRefError(f"{where}: environment variable {name} is not set")
    return value


def _secret(name: str, where: str) -> str:
    from prefect.blocks.system import Secret

    try:
        return str(Secret.load(name).get())
    except ValueError:
        raise WarehouseRefError(f"{where}: no Prefect Secret block named {name!r}") from None
