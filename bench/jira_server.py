"""The Jira simulator in a spawned process, driven through two queues: ``bench.jira`` measures our sync
against it and ``bench.peer_tap_jira`` runs Singer's tap-jira against it.

Its own process so that its JSON rendering does not compete with the client under test for the GIL.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from datetime import date
from typing import Any


def _serve(cfg: Any, urls: Any, commands: Any) -> None:
    """The simulator process: answers HTTP on its own threads, and bench commands on this queue."""
    from sandbox.jira import JiraSimulator

    with JiraSimulator(cfg) as sim:
        urls.put(
            (
                sim.url,
                len(sim.data.issues),
                len(sim.data.worklogs),
                len(sim.data.users),
                len(sim.data.projects),
            )
        )
        while True:
            cmd = commands.get()
            if cmd == "stop":
                return
            if cmd == "edit":  # a day's worth of changes: 50 issues edited, 200 worklogs added, 20 deleted
                issues = list(sim.data.issues.values())
                acct = next(iter(sim.data.users))
                for n in range(50):
                    sim.edit_issue(issues[n * 37 % len(issues)].key, summary=f"bench edit {n}")
                for n in range(200):
                    sim.add_worklog(issues[n * 53 % len(issues)].key, acct, date(2026, 6, 1), 3600)
                for wid in list(sim.data.worklogs)[:20]:
                    sim.delete_worklog(wid)
                sim.stats.clear()
                urls.put("done")
            elif cmd == "log":  # the requests served since the last "log", then forget them
                with sim.lock:
                    log, sim.log = sim.log, []
                    n, sim.stats["requests"] = sim.stats["requests"], 0
                urls.put((log, n))
            elif cmd == "cpu":  # CPU seconds this process (all its threads) has used so far
                t = os.times()
                urls.put(t.user + t.system)
            elif cmd == "cold":  # drop the query caches: the next client starts as cold as the first
                with sim.lock:
                    sim._cache.clear()
                urls.put("done")
            elif isinstance(cmd, tuple) and cmd[0] == "throttle":  # 429 every Nth request from now on
                with sim.lock:
                    sim.config.throttle_every, sim.config.retry_after = cmd[1], 1
                    sim.timeline = []
                urls.put("done")
            elif cmd == "timeline":  # every request's stamps since the last "timeline" or "throttle"
                with sim.lock:
                    timeline, sim.timeline = sim.timeline, []
                urls.put(timeline)
            elif cmd == "truth":  # what the site holds: issues, worklogs, their seconds
                with sim.lock:
                    urls.put(
                        {
                            "issues": len(sim.data.issues),
                            "worklogs": len(sim.data.worklogs),
                            "worklog_seconds": sum(w.seconds for w in sim.data.worklogs.values()),
                        }
                    )


class Server:
    """A simulator in a spawned process, driven through two queues."""

    def __init__(self, cfg: Any) -> None:
        ctx = mp.get_context("spawn")
        self.replies, self.commands = ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(cfg, self.replies, self.commands), daemon=True)
        self.process.start()
        self.url, *self.size = self.replies.get(timeout=600)

    def ask(self, cmd: str | tuple[Any, ...]) -> Any:
        self.commands.put(cmd)
        return self.replies.get(timeout=600)

    def stop(self) -> None:
        self.commands.put("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
