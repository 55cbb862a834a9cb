"""The sync the fault bench runs and kills: ``python -m bench.faults.child CONFIG --database-url URL``.

It runs every configured stream (or one source's) through ``flows.runner.run`` as ``pmo sync`` does, without
the reconciliation and marts that follow (they read the warehouse, they do not load it). One line per failed
stream goes to stderr, ``FAILED source/stream: module.Exception: message``; exit 1 if any failed.
``--allow-mass-delete`` as in ``pmo sync``. ``--kill-item NAME:N`` SIGKILLs this process once the Nth batch
of lines of a file item whose name contains NAME is staged and not yet committed (N=0: as that item starts,
after the items before it committed): the kill points inside file loads, which no HTTP request marks.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flows import config as cfg
from flows.runner import run
from warehouse.db import upgrade


@dataclass
class KillingItem:
    """An item whose lines end the process at batch ``at``: the file's transaction never commits."""

    inner: Any
    at: int

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def lines(self) -> Iterator[Any]:
        if self.at == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        for n, batch in enumerate(self.inner.lines(), 1):
            yield batch
            if n == self.at:
                os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class KillingStream:
    inner: Any
    match: str
    at: int

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def items(self, state: Any) -> Iterator[Any]:
        for item in self.inner.items(state):
            parts = getattr(item, "parts", None)
            if parts is not None:  # a project file: its parts load (and must die) inside one transaction
                item.parts = [KillingItem(p, self.at) if self.match in p.name else p for p in parts]
                yield item
            else:
                yield KillingItem(item, self.at) if self.match in item.name else item


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults.child")
    ap.add_argument("config")
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--source")
    ap.add_argument("--kill-item", help="NAME:N")
    ap.add_argument("--allow-mass-delete", action="store_true")
    args = ap.parse_args(argv)
    config = cfg.load(args.config)
    engine = config.engine(args.database_url)
    upgrade(engine)
    failed = 0
    for s in config.streams(args.source):
        if args.kill_item and hasattr(s, "items"):
            match, at = args.kill_item.rsplit(":", 1)
            s = KillingStream(s, match, int(at))
        try:
            summary = run(engine, s, allow_mass_delete=args.allow_mass_delete)
        except Exception as e:  # recorded in sync_run by the runner; the bench reads the line
            failed += 1
            kind = f"{type(e).__module__}.{type(e).__qualname__}"
            print(f"FAILED {s.source}/{s.name}: {kind}: {e}", file=sys.stderr, flush=True)
            continue
        print(f"ok {s.source}/{s.name}: {summary.as_dict()}", flush=True)
    engine.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
