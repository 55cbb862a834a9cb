"""Tell someone when a scheduled run fails or leaves a source stale, through a Prefect notification block.

Nobody watches a nightly run: its flows call ``on_failure``/``on_crashed`` when it fails and
``on_completion`` when it succeeds, and both send one message through the block named in ``[notify]`` —
which streams failed and why (redacted), and which sources are stale — the latter also after a run
that succeeded. A run that succeeded with every source fresh sends nothing.

```toml
[notify]
block = "slack-webhook/pmo-alerts"  # <block type>/<name>: slack-webhook, ms-teams-webhook, custom-webhook
stale_after_hours = 36              # a source whose last successful run is older than this is stale
```
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, func, select

from flows import config as cfg
from flows.warehouse import open_for_flow
from model.redact import redact
from warehouse.schema import sync_run

KEYS = {"block", "stale_after_hours"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifySettings:
    block: str | None = None  # None: nobody to tell
    stale_after: timedelta = timedelta(hours=36)


def settings(raw: Mapping[str, Any], where: str = "notify") -> tuple[NotifySettings, list[str]]:
    """``[notify]`` as NotifySettings, plus every problem found in it."""
    problems = [
        f"{where}.{k}: unknown setting (known: {', '.join(sorted(KEYS))})" for k in sorted(set(raw) - KEYS)
    ]
    block = raw.get("block")
    if block is not None and (not isinstance(block, str) or block.count("/") != 1 or "" in block.split("/")):
        problems.append(
            f'{where}.block: expected "<block type>/<block name>", e.g. "slack-webhook/pmo-alerts"'
        )
        block = None
    hours = raw.get("stale_after_hours", 36)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
        problems.append(f"{where}.stale_after_hours: must be a positive number of hours")
        hours = 36
    return NotifySettings(block, timedelta(hours=hours)), problems


def stale_sources(
    engine: Engine, sources: Collection[str], stale_after: timedelta, now: datetime | None = None
) -> dict[str, str]:
    """source → its stale streams, for those of ``sources`` with a stream whose last success is older
    than ``stale_after`` or that never succeeded; a source with no run on record at all is stale too."""
    now = now or datetime.now(UTC)
    last = func.max(case((sync_run.c.status == "succeeded", sync_run.c.finished_at)))
    q = (
        select(sync_run.c.source, sync_run.c.stream, last)
        .where(sync_run.c.source.in_(list(sources)))
        .group_by(sync_run.c.source, sync_run.c.stream)
        .order_by(sync_run.c.source, sync_run.c.stream)
    )
    with engine.connect() as c:
        rows = c.execute(q).all()
    stale: dict[str, list[str]] = {s: [] for s in sorted(set(sources) - {source for source, _, _ in rows})}
    for source, stream, at in rows:
        at = at if at is None or at.tzinfo else at.replace(tzinfo=UTC)  # SQLite: naive UTC
        if at is None or now - at > stale_after:
            when = "never" if at is None else f"{at:%Y-%m-%d %H:%M} UTC"
            stale.setdefault(source, []).append(f"{stream} (last success {when})")
    return {source: ", ".join(streams) or "no run on record" for source, streams in stale.items()}


def message(flow: str, outcome: str, failure: str | None, stale: Mapping[str, str], hours: float) -> str:
    """The message's body: what failed (redacted), then what is stale."""
    lines = [f"pmo-sync {flow}: {outcome}"]
    if failure:
        lines += ["", redact(failure)]
    if stale:
        lines += ["", f"Stale (no successful run for {hours:g} h):"]
        lines += [f"- {source}: {streams}" for source, streams in stale.items()]
    return "\n".join(lines)


def send(block: str, subject: str, body: str) -> None:
    """Through the configured Prefect notification block (Slack, Teams, any webhook)."""
    from prefect.blocks.core import Block
    from prefect.blocks.notifications import NotificationBlock

    target = Block.load(block)
    if not isinstance(target, NotificationBlock):
        raise ValueError(f"notify.block {block!r} is a {type(target).__name__}, not a notification block")
    with target.raise_on_failure():
        target.notify(body, subject)


def report(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect state hook: tell the configured block about a failed run, or about stale sources."""
    params = flow_run.parameters or {}
    failed = not state.is_completed()
    try:
        config = cfg.load(params.get("config_path", "pmo.toml"))
    except cfg.ConfigError as e:
        log.error("notify: no configuration to find the block in: %s", e.problems[0])
        return
    wanted, problems = settings(config.raw.get("notify", {}))
    if problems or wanted.block is None:
        return  # the flow reported the problems when it started; without a block nobody can be told
    try:
        stale = _stale(config, params.get("warehouse"), wanted.stale_after)
    except Exception as e:  # the warehouse or a source's settings failed: the run's message says so
        log.warning("notify: cannot tell which sources are stale: %s", redact(str(e).splitlines()[0]))
        stale = {}
    if not failed and not stale:
        return
    outcome = state.name.lower() if failed else "succeeded, but sources are stale"
    hours = wanted.stale_after.total_seconds() / 3600
    body = message(flow.name, outcome, state.message if failed else None, stale, hours)
    try:
        send(wanted.block, f"pmo-sync {flow.name}: {outcome}", body)
    except Exception as e:  # a hook that raises would hide the run's own outcome
        log.error("notify: could not send through %s: %s", wanted.block, redact(str(e)))


def _stale(config: Any, warehouse: str | None, stale_after: timedelta) -> dict[str, str]:
    """The stale sources among those configured (built streams name them as their records do)."""
    sources = {s.source for s in config.streams()}
    engine = open_for_flow(config, warehouse, migrate=False)
    try:
        return stale_sources(engine, sources, stale_after)
    finally:
        engine.dispose()
