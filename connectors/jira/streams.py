"""The Jira streams: each declares its endpoint, cursor and mapping; paging, pacing, retries: the client.

Cursors (``connectors.base.Cursor``):
- issues, changelogs: ``updated`` = the start of the last complete run (its window end); mid-run pages
  commit ``updated``, ``until`` and ``after_id`` so a killed run resumes after the last issue id it stored.
  Issues are read ``ORDER BY id``: an edit during the run cannot shift unread issues past the pager, and
  whatever was edited after the run began is caught by the next window (``updated`` − lookback).
- worklogs, worklog_deletions: ``updated`` = the ``until`` (epoch ms) of the last worklog/updated|deleted
  page.
- projects, people: full listings each run (small); issue_deletions: the key-only scan, no cursor.

Parallel fetch (Cloud, the site's ``concurrency`` > 1): issues read page 1 as ever; when more follow, the
ids after it (an id-only scan, 5000 a page) are cut into id ranges of one page each, fetched several at a
time; worklog/updated is walked in time spans side by side once page 1 is not the last; worklog/list
batches and changelog/bulkfetch chunks are fetched several at a time while the listing that names them
walks on. Everything is handed over in order (``connectors.parallel.ordered_map``), so each page's
watermark passes only pages already stored; every request takes one of the site's ``concurrency`` slots
and passes its one token bucket. ``concurrency = 1`` is the sequential read, request for request. A page
is mapped to records in the thread that fetched it, so what waits in the hand-over is records, not parsed
JSON; what depends on the order (a repeated issue, a person already introduced, the worklog scope) is
decided as pages are handed over (``_Mapped``, ``_flat``).

Scope: the site's ``jql`` limits every stream. Cloud's worklog/updated|list answer for the whole site, so
worklogs are kept only for issues in scope; an issue that leaves the scope is retired as "out of scope",
not as deleted. People: the people listing is the record of a person; an issue's assignee or reporter
and a worklog's author only introduce someone the warehouse does not know yet. One precedence, so two
paths never overwrite each other and an unchanged run writes nothing.

Order within a run (``after``; the rest may run at once): issues and worklogs after people, so the
listing is stored before a reference could introduce the same person; worklog_deletions after worklogs,
so a deletion never lands before the row it retires; changelogs and issue_deletions after issues, whose
stored ids the deletion scan compares with the site's listing.
"""

from __future__ import annotations

import logging
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

from connectors.base import EPOCH, Cursor, Page, SourceError, StreamState
from connectors.jira import mapping as M
from connectors.jira.client import JiraClient, Tally, ahead
from connectors.parallel import ordered_map
from model.records import Person, Record, Rejected

log = logging.getLogger(__name__)
A = TypeVar("A")
R = TypeVar("R")

WHOLE_SITE = 'created >= "1970-01-01"'  # the default scope: search/jql needs a bounded query
ISSUE_PAGE = 100  # the most search/jql returns per page once fields beyond id/key are asked for
ID_PAGE = 5000  # ... and for id-only queries
# Issues in one id range of a split read: one short of a page, so its one page is the last one whatever a
# server makes of an exactly full page (a trailing empty page per range would double the requests).
ISSUE_RANGE = ISSUE_PAGE - 1
WORKLOG_IDS = 1000  # worklog/list takes at most 1000 ids
CHANGELOG_ISSUES = 1000  # changelog/bulkfetch: ≤1000 issues, ≤10 fieldIds, maxResults ≤10000
# worklog/updated pages whose ids a page is checked against: a seam's repeats are in the page just before
# it (a span ends on the first page that reaches the next span's start); one more for slack. Not the
# whole run's ids, which grow with the data (~9 MB for 100,000 worklogs).
SEAM_PAGES = 2


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _JiraStream:
    client: JiraClient
    source: str
    scope: str = WHOLE_SITE  # the site's JQL scope
    fields: M.FieldMap = field(default_factory=M.FieldMap)
    lookback: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = _now
    name = ""
    kind: ClassVar[Literal["pages"]] = "pages"
    after: ClassVar[tuple[str, ...]] = ()

    def _jql(
        self,
        since: datetime | None,
        after_id: int | None = None,
        tally: Tally | None = None,
        upto: int | None = None,
    ) -> str:
        """The window's query, from after ``after_id`` up to ``upto`` (an id range of a split read)."""
        parts = [f"({self.scope})"]
        if since is not None:
            # JQL dates have minute precision and are read in the API user's time zone.
            local = (since - self.lookback).astimezone(self.client.timezone(tally))
            parts.append(f'updated >= "{local:%Y-%m-%d %H:%M}"')
        if after_id is not None:
            parts.append(f"id > {after_id}")
        if upto is not None:
            parts.append(f"id <= {upto}")
        return " AND ".join(parts) + " ORDER BY id ASC"

    def _window(self, state: StreamState) -> tuple[datetime | None, datetime, int | None]:
        """(since, until, resume-after-id) for this run."""
        if state.mode == "backfill":
            return state.window.start, state.window.end or self.clock(), None
        cursor = state.cursor if state.mode == "incremental" else Cursor()
        return cursor.updated, cursor.until or self.clock(), cursor.after_id

    @staticmethod
    def _mark(since: datetime | None, until: datetime, after_id: int | None) -> str:
        """Mid-run: resume after ``after_id`` in this window; at the end (None): the next window starts."""
        return (Cursor(until) if after_id is None else Cursor(since, until, after_id)).to_text()


@dataclass
class ProjectsStream(_JiraStream):
    name = "projects"

    def read(self, state: StreamState) -> Iterator[Page]:
        tally = Tally()
        c = self.client
        pages = (
            c.paged_values("/rest/api/3/project/search", {"expand": "lead,description"}, 50, tally)
            if c.site(tally) == "cloud"
            else iter([c.listed("GET", "/rest/api/2/project", params={"expand": "lead"}, tally=tally)])
        )
        for values in pages:
            records, rejected = _map_each(
                values, lambda p: [M.project(p, self.source, c.browse_url)], self.source, "project"
            )
            yield Page(records, rejected, requests=tally.take())


@dataclass
class PeopleStream(_JiraStream):
    name = "people"

    def read(self, state: StreamState) -> Iterator[Page]:
        tally = Tally()
        c = self.client
        if c.site(tally) == "cloud":
            pages = c.paged_values("/rest/api/3/users/search", {}, 1000, tally)
        else:
            # Inactive users too: the listing is the only writer of a known person, so one who leaves must
            # show up here to be marked inactive (Data Center lists active users only by default).
            query = {"username": ".", "includeInactive": "true"}
            pages = c.paged_values("/rest/api/2/user/search", query, 1000, tally)
        for values in pages:
            people = [u for u in values if u.get("accountType", "atlassian") == "atlassian"]  # no apps/bots
            records, rejected = _map_each(people, lambda u: [M.person(u, self.source)], self.source, "user")
            yield Page(records, rejected, requests=tally.take())


@dataclass
class IssuesStream(_JiraStream):
    """Issues as Tasks (plus their assignee and reporter as People), incremental on ``updated``."""

    name = "issues"
    after = ("people",)

    def read(self, state: StreamState) -> Iterator[Page]:
        tally = Tally()
        since, until, after_id = self._window(state)
        jql = self._jql(since, after_id, tally)
        fields = self.fields.issue_fields()
        c = self.client
        cloud = c.site(tally) == "cloud"

        def fetch(t: Tally) -> Iterator[list[_Mapped]]:
            if not cloud:
                return map(self._mapped, c.search_v2(jql, fields, ISSUE_PAGE, t))
            if c.concurrency == 1:
                return map(self._mapped, c.search_jql(jql, fields, ISSUE_PAGE, t))
            return self._split(since, after_id, fields, t)

        seen: set[str] = set()
        people = _NewPeople(_known(state, "person"))
        for issues, n in ahead(fetch):
            fresh = [i for i in issues if i.key is None or i.key not in seen]  # a repeat is no news
            seen.update(i.key for i in fresh if i.key is not None)
            records, rejected = _flat(fresh, people)
            last = _last_id(i.key for i in issues)
            mark = self._mark(since, until, last) if last is not None else None  # no issue: no news
            yield Page(records, rejected, watermark=mark, requests=tally.take() + n)
        yield Page(watermark=self._mark(since, until, None), requests=tally.take())

    def _split(
        self, since: datetime | None, after_id: int | None, fields: list[str], tally: Tally
    ) -> Iterator[list[_Mapped]]:
        """The window's pages in id order, mapped, up to ``concurrency`` in flight (Cloud).

        search/jql pages by token, one after another; only id ranges can be asked side by side. Page 1 is
        asked as the sequential read asks it (a window of one page costs one request, as ever); when more
        follow, the id-only scan of the rest (5000 ids a request: 2% more requests) is cut into ranges of
        one page each (``ISSUE_RANGE``: 1% more), asked in parallel while the scan walks on. The last range
        is open-ended, so an issue created during the read is read as the sequential pager would read it.
        Each range's page is mapped in the thread that fetched it (``part``), so what waits to be handed
        over in order is records, not parsed JSON.
        """
        c = self.client
        first = next(c.jql_pages(self._jql(since, after_id), fields, ISSUE_PAGE, tally))
        last = _last_id(str(i.get("id")) for i in first.items)
        yield self._mapped(first.items)
        if first.last:
            return
        lo = after_id if last is None else last
        where = f"{self.source}/{self.name}"
        scan = c.search_jql(self._jql(since, lo), ["id"], ID_PAGE, tally)
        ids = (int(i) for page in scan for i in _ids(page, where))

        def part(bounds: tuple[int | None, int | None], t: Tally) -> list[list[_Mapped]]:
            pages = c.search_jql(self._jql(since, bounds[0], upto=bounds[1]), fields, ISSUE_PAGE, t)
            return [self._mapped(page) for page in pages]  # each page mapped before the next is asked

        for pages in _in_parallel(c, part, _id_ranges(ids, lo, ISSUE_RANGE), tally):
            yield from pages
        if tally.n:  # a scan page that named no more issues: its request is still counted
            yield []

    def _records(self, issue: dict[str, Any]) -> list[Record]:
        return [*M.issue_people(issue, self.source), M.task(issue, self.source, self.fields)]

    def _mapped(self, issues: list[dict[str, Any]]) -> list[_Mapped]:
        """A page's issues as records, each keyed by its issue id (repeats are dropped in order)."""
        return _map_apart(issues, self._records, _issue_id, self.source, "issue")


@dataclass
class WorklogsStream(_JiraStream):
    """Worklogs as TimeEntries: worklog/updated → worklog/list (Cloud); per-issue worklogs (Data Center)."""

    name = "worklogs"
    after = ("people",)

    def read(self, state: StreamState) -> Iterator[Page]:
        tally = Tally()
        people = _NewPeople(_known(state, "person"))
        if self.client.site(tally) != "cloud":
            yield from self._read_per_issue(state, tally, people)
            return
        since = _since_ms(state, self.lookback)
        scope = None if self.scope == WHOLE_SITE else _InScope(self, _known(state, "task"))
        for (until, worklogs), n in ahead(lambda t: self._fetch(since, t, scope)):
            records, rejected = _flat(worklogs, people)
            mark = _at_ms(until) if until is not None else None
            yield Page(records, rejected, watermark=mark, requests=tally.take() + n)
        if scope is not None and scope.skipped:
            log.info(
                "%s/worklogs: skipped %d worklogs of %d issues outside the scope (%s)",
                self.source,
                scope.skipped,
                len(scope.outside),
                self.scope,
            )

    def _map(self, worklogs: list[dict[str, Any]], people: _NewPeople) -> tuple[list[Record], list[Rejected]]:
        """TimeEntries, and their authors when the warehouse does not know them yet."""
        return _flat(self._mapped(worklogs), people)

    def _mapped(self, worklogs: list[dict[str, Any]]) -> list[_Mapped]:
        """Each worklog's TimeEntry and author, keyed by its issue (for the scope); ``_flat`` later keeps
        only the authors new to the run. One Person per author and page, shared by their worklogs."""
        authors: dict[str, Person] = {}

        def records(w: dict[str, Any]) -> list[Record]:
            entry, author = M.time_entry(w, self.source), w.get("author")
            pid = M.person_id(author)
            if pid is None:
                return [entry]
            if pid not in authors:
                authors[pid] = M.person(author, self.source)
            return [entry, authors[pid]]

        return _map_apart(worklogs, records, _worklog_issue, self.source, "worklog")

    def _fetch(
        self, since: int, tally: Tally, scope: _InScope | None
    ) -> Iterator[tuple[int | None, list[_Mapped]]]:
        """(until, mapped worklogs, keyed by issue id) per worklog/updated page: its ids, then worklog/list
        for them, up to ``concurrency`` batches at a time; a worklog listed twice (on the seam of two
        spans) is read once."""
        recent: deque[set[str]] = deque(maxlen=SEAM_PAGES)

        def changed() -> Iterator[tuple[int | None, list[str]]]:
            for until, values in self._changes(since, tally):
                ids = list(dict.fromkeys(map(str, values)))
                ids = [i for i in ids if not any(i in page for page in recent)]
                recent.append(set(ids))
                yield until, ids

        for until, worklogs in _in_parallel(self.client, self._list, changed(), tally):
            yield until, worklogs if scope is None else scope.keep(worklogs, tally)

    def _changes(self, since: int, tally: Tally) -> Iterator[tuple[int | None, Sequence[int]]]:
        """worklog/updated's pages in time order: (until, worklog ids); until None where a page may not be
        the watermark.

        The listing pages by ``until``, one page after another. When page 1 is not the last (and the site
        allows several requests at once), the time after it up to now is cut into ``concurrency`` spans
        walked side by side, each until it reaches the next span's start, the last until the end; a seam
        costs a page that overlaps the next span. Spans are handed on in order, holding only ids, packed
        (a span is walked to its end before it is handed on: 8 bytes an id, not a dict of ~200). A page
        of a span names its ``until`` as the watermark only when it holds worklogs: an empty page's
        ``until`` is just where it was asked to start, maybe past what the site lists yet (it leaves out
        the last minute).
        """
        c = self.client
        pages = c.worklog_changes("updated", since, tally)
        until, values, last = next(pages)
        yield until, _worklog_ids(values)
        if last or c.concurrency == 1:
            yield from ((u, _worklog_ids(v)) for u, v, _ in pages)
            return
        pages.close()
        starts = _spans(until, _ms(self.clock()), c.concurrency)
        for span in _in_parallel(c, self._walk, zip(starts, [*starts[1:], None], strict=True), tally):
            for u, v in span:
                yield (u if v else None), v

    def _walk(self, span: tuple[int, int | None], tally: Tally) -> list[tuple[int, Sequence[int]]]:
        """worklog/updated from a span's start until a page reaches ``stop`` (the next span's start)."""
        start, stop = span
        out: list[tuple[int, Sequence[int]]] = []
        for until, values, _ in self.client.worklog_changes("updated", start, tally):
            out.append((until, _worklog_ids(values)))  # the ids are all we use
            if stop is not None and until >= stop:
                break
        return out

    def _list(self, change: tuple[int | None, list[str]], tally: Tally) -> tuple[int | None, list[_Mapped]]:
        """One worklog/updated page's worklogs (worklog/list, 1000 ids a request), mapped here, in the
        fetching thread: a parsed batch (~4 MB a 1000) is dropped at once, and only its records (~1 MB)
        wait to be handed over in order."""
        until, ids = change
        worklogs: list[_Mapped] = []
        for chunk in _chunks(ids, WORKLOG_IDS):
            body = {"ids": [int(i) for i in chunk]}
            worklogs += self._mapped(
                self.client.listed("POST", "/rest/api/3/worklog/list", body=body, tally=tally)
            )
        return until, worklogs

    def _read_per_issue(self, state: StreamState, tally: Tally, people: _NewPeople) -> Iterator[Page]:
        """Data Center: issues updated in the window (logging work updates the issue), then their worklogs."""
        since, until, after_id = self._window(state)
        for issues in self.client.search_v2(self._jql(since, after_id, tally), ["id"], 1000, tally):
            records: list[Record] = []
            rejected: list[Rejected] = []
            ids = _ids(issues, f"{self.source}/{self.name}")
            for issue_id in ids:
                for values in self.client.paged_values(
                    f"/rest/api/2/issue/{issue_id}/worklog", {}, 5000, tally, key="worklogs"
                ):
                    values = [{**w, "issueId": w.get("issueId") or issue_id} for w in values]
                    r, x = self._map(values, people)
                    records += r
                    rejected += x
            last = max(map(int, ids), default=after_id)
            yield Page(records, rejected, watermark=self._mark(since, until, last), requests=tally.take())
        yield Page(watermark=self._mark(since, until, None), requests=tally.take())


@dataclass
class WorklogDeletionsStream(_JiraStream):
    """Deleted worklogs from worklog/deleted: their TimeEntries get ``deleted_at``, the rows stay."""

    name = "worklog_deletions"
    after = ("worklogs",)

    def read(self, state: StreamState) -> Iterator[Page]:
        tally = Tally()
        if self.client.site(tally) != "cloud":  # Data Center: per-issue listings, not diffed yet
            yield Page(requests=tally.take())
            return
        for until, values, _ in self.client.worklog_changes(
            "deleted", _since_ms(state, self.lookback), tally
        ):
            ids = [str(v["worklogId"]) for v in values]
            yield Page(deleted={"time_entry": ids}, watermark=_at_ms(until), requests=tally.take())


@dataclass
class ChangelogsStream(_JiraStream):
    """Status, assignee, sprint and story-point history (changelog/bulkfetch) of issues changed lately."""

    name = "changelogs"
    after = ("issues",)

    def read(self, state: StreamState) -> Iterator[Page]:
        tally = Tally()
        if self.client.site(tally) != "cloud":  # Data Center: no bulk changelog endpoint; not pulled yet
            yield Page(requests=tally.take())
            return
        since, until, after_id = self._window(state)
        field_ids = ["status", "assignee", self.fields.sprint, self.fields.story_points]
        jql = self._jql(since, after_id, tally)
        c = self.client

        def fetch(t: Tally) -> Iterator[tuple[list[Record], int | None]]:
            """(bulkfetch page's status changes, last issue id once its chunk is complete); the chunks of
            1000 ids are fetched up to ``concurrency`` at a time while the id scan walks on, and each page
            is mapped in the thread that fetched it, so only records wait to be handed over in order."""
            chunks = (
                chunk
                for issues in c.search_jql(jql, ["id"], ID_PAGE, t)
                for chunk in _chunks(_ids(issues, f"{self.source}/{self.name}"), CHANGELOG_ISSUES)
            )

            def bulk(chunk: list[str], tt: Tally) -> list[tuple[list[Record], int | None]]:
                pages = c.changelogs(chunk, field_ids, tt)
                return [(self._changes(page.items), int(chunk[-1]) if page.last else None) for page in pages]

            for pages in _in_parallel(c, bulk, chunks, t):
                yield from pages
            if t.n:  # an id page with nothing to fetch: its request is still counted
                yield [], None

        # Fetched a page ahead (as issues and worklogs are): storing one page overlaps the next round trip.
        for (records, last), n in ahead(fetch):
            # The cursor moves only once every page of a chunk is stored.
            mark = self._mark(since, until, last) if last is not None else None
            yield Page(records, watermark=mark, requests=tally.take() + n)
        yield Page(watermark=self._mark(since, until, None), requests=tally.take())

    def _changes(self, logs: list[dict[str, Any]]) -> list[Record]:
        """A bulkfetch page's status changes."""
        records: list[Record] = []
        for changes in logs:
            for h in changes.get("changeHistories") or []:
                records += M.status_changes(changes["issueId"], h, self.source, self.fields)
        return records


@dataclass
class IssueDeletionsStream(_JiraStream):
    """Deleted issues: every issue id in scope (search/jql, fields=id, 5000 a page) vs the warehouse's.

    Only a complete listing may delete (the pager fails the run on any page it cannot believe), never more
    than ``MAX_DELETE_SHARE`` of the live tasks unless the run allows it, and only what the site lost: an
    issue missing from the listing that the site still has left the scope, and is retired as such.
    """

    name = "issue_deletions"
    after = ("issues",)

    def read(self, state: StreamState) -> Iterator[Page]:
        where = f"{self.source}/{self.name}"
        if state.known_ids is None:
            raise SourceError(f"{where}: needs the warehouse's known task ids (StreamState.known_ids)")
        # Read first: anything stored before the scan must show up in it. Each page of the listing is
        # struck off as it comes, so the run holds one set of ids, not the warehouse's and the site's.
        unlisted = set(state.known_ids("task"))
        live = len(unlisted)
        tally = Tally()
        c = self.client
        for issues in c.search(self._jql(None), ["id"], ID_PAGE, tally):
            unlisted.difference_update(_ids(issues, where))
        missing = sorted(unlisted, key=lambda s: (len(s), s))
        del unlisted
        narrowed = " or you narrowed its jql" if self.scope != WHOLE_SITE else ""
        state.check_deletions(where, "task", len(missing), live, narrowed)
        still = c.existing_issues(missing, tally) if self.scope != WHOLE_SITE else set()
        reason = f"out of scope: {self.scope}"
        for chunk in _chunks([i for i in missing if i in still], 1000):
            yield Page(deleted={"task": chunk}, deleted_reason=reason, requests=tally.take())
        for chunk in _chunks([i for i in missing if i not in still], 1000) or [[]]:
            yield Page(deleted={"task": chunk}, requests=tally.take())


STREAMS: dict[str, type[_JiraStream]] = {
    s.name: s
    for s in (
        ProjectsStream,
        PeopleStream,
        IssuesStream,
        WorklogsStream,
        WorklogDeletionsStream,
        ChangelogsStream,
        IssueDeletionsStream,
    )
}


@dataclass
class _NewPeople:
    """People a reference may introduce: those neither in the warehouse nor introduced earlier this run.

    The people listing writes every person it returns; references (assignee, reporter, worklog author)
    carry fewer or other details (hidden e-mails, fallback names), so they never overwrite a known person.
    """

    done: set[str]

    def new(self, person_id: str | None) -> bool:
        if person_id is None or person_id in self.done:
            return False
        self.done.add(person_id)
        return True


@dataclass
class _InScope:
    """Cloud's worklog/list answers for the whole site: keep the worklogs of issues in this source's scope.

    The warehouse's live tasks are in scope; about any other issue the site is asked once, with one
    search per worklog page that has such issues, so an issue created after the issues stream ran keeps
    its worklogs. Worklogs of out-of-scope issues are skipped and counted.
    """

    stream: _JiraStream
    inside: set[str]
    outside: set[str] = field(default_factory=set)
    skipped: int = 0

    def keep(self, worklogs: list[_Mapped], tally: Tally) -> list[_Mapped]:
        """The mapped worklogs (keyed by their issue id) of issues in scope."""
        issue_ids = {str(w.key) for w in worklogs}
        ask = sorted(i for i in issue_ids - self.inside - self.outside if i.isdigit())
        if ask:
            jql = f"({self.stream.scope}) AND id in ({', '.join(ask)}) ORDER BY id ASC"
            pages = self.stream.client.search_jql(jql, ["id"], ID_PAGE, tally)
            found = {i for page in pages for i in _ids(page, f"{self.stream.source}/worklogs")}
            self.inside |= found
            self.outside |= set(ask) - found
        kept = [w for w in worklogs if str(w.key) in self.inside]
        self.skipped += len(worklogs) - len(kept)
        return kept


def _in_parallel(
    client: JiraClient, fn: Callable[[A, Tally], R], items: Iterable[A], tally: Tally
) -> Iterator[R]:
    """``fn(item, tally)`` for every item, up to the site's ``concurrency`` calls in flight, results in the
    order of ``items``. Each call counts its requests on a tally of its own (threads never share one),
    added to ``tally`` as its result is handed over: each page still carries the requests it took. No more
    results wait than calls run (``ahead=1``), and ``fn`` maps what it fetched before it returns: what
    waits is records, never parsed pages (a worklog page is ~4 MB parsed, ~1 MB as records), so memory
    stays flat as the data grows."""

    def call(item: A) -> tuple[R, int]:
        own = Tally()
        return fn(item, own), own.n

    for result, n in ordered_map(call, items, client.concurrency, ahead=1):
        tally.n += n
        yield result


def _id_ranges(ids: Iterable[int], after: int | None, size: int) -> Iterator[tuple[int | None, int | None]]:
    """Consecutive id ranges ``(after, hi]`` of ``size`` ids each from an ascending id listing, the last one
    open-ended (``hi`` None). Consecutive, so no id between two ranges is skipped; a range is handed out
    as soon as the next id shows that it is complete, so fetching starts while the listing walks on."""
    lo, count, end = after, 0, after
    for i in ids:
        if count == size:
            yield lo, end
            lo, count = end, 0
        count, end = count + 1, i
    if count:
        yield lo, None


def _spans(start: int, now: int, n: int) -> list[int]:
    """The starts of ``n`` equal spans of [start, now] (epoch ms); one span when there is no time to cut."""
    step = (now - start) // n
    return [start + k * step for k in range(n)] if step > 0 else [start]


def _last_id(ids: Iterable[str | None]) -> int | None:
    """The highest numeric id of a page (pages are read in id order), None for a page without one."""
    return max((int(i) for i in ids if str(i).isdigit()), default=None)


def _known(state: StreamState, entity: str) -> set[str]:
    """The warehouse's live ids of ``entity`` (none when the stream runs without a warehouse)."""
    return set(state.known_ids(entity)) if state.known_ids is not None else set()


def _ids(issues: Sequence[dict[str, Any]], where: str) -> list[str]:
    """The ids of an id listing; an entry without one makes the listing unusable (it would delete)."""
    if not all(i.get("id") for i in issues):
        raise SourceError(f"{where}: the id listing holds an issue without an id")
    return [str(i["id"]) for i in issues]


def _since_ms(state: StreamState, lookback: timedelta) -> int:
    """worklog/updated|deleted's ``since``: the window start, else the cursor minus the lookback, else 0."""
    if state.mode == "backfill" and state.window.start:
        return int(state.window.start.timestamp() * 1000)
    updated = state.cursor.updated if state.mode == "incremental" else None
    return max(0, _ms(updated - lookback)) if updated else 0


def _ms(at: datetime) -> int:
    """Epoch milliseconds, exactly (no float rounding): what worklog/updated|deleted speak."""
    return (at - EPOCH) // timedelta(milliseconds=1)


def _at_ms(until: int) -> str:
    """A worklog page's ``until`` (epoch ms) as the cursor to store."""
    return Cursor(EPOCH + timedelta(milliseconds=int(until))).to_text()


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _map_each(
    payloads: Sequence[dict[str, Any]], fn: Callable[[dict[str, Any]], list[Record]], source: str, where: str
) -> tuple[list[Record], list[Rejected]]:
    """Map every payload; one that fails is quarantined with its reason and the rest still load."""
    mapped = _map_apart(payloads, fn, lambda _: None, source, where)
    return [r for m in mapped for r in m.records], [m.rejected for m in mapped if m.rejected is not None]


class _Mapped(NamedTuple):
    """One payload mapped in the thread that fetched it: its key (an issue id: to drop repeats, or keep a
    worklog in scope, in order), its records, or why it was rejected. Results of parallel fetches wait
    to be handed over in order; as records they take a quarter of the parsed JSON they come from."""

    key: str | None
    records: list[Record]
    rejected: Rejected | None = None


def _map_apart(
    payloads: Sequence[dict[str, Any]],
    fn: Callable[[dict[str, Any]], list[Record]],
    key: Callable[[dict[str, Any]], str | None],
    source: str,
    where: str,
) -> list[_Mapped]:
    """Each payload's records under its key, or why it failed (quarantined, the rest still load): the key
    serves filters that must run in page order."""
    out: list[_Mapped] = []
    for p in payloads:
        try:
            out.append(_Mapped(key(p), fn(p)))
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            out.append(_Mapped(key(p), [], M.reject(source, where, p, e)))
    return out


def _flat(items: Iterable[_Mapped], people: _NewPeople) -> tuple[list[Record], list[Rejected]]:
    """A page's records and rejected lines, with only the people ``people`` has not seen this run."""
    records = [r for i in items for r in i.records if not isinstance(r, Person) or people.new(r.source_id)]
    return records, [i.rejected for i in items if i.rejected is not None]


def _issue_id(issue: dict[str, Any]) -> str | None:
    return None if issue.get("id") is None else str(issue["id"])


def _worklog_ids(values: list[dict[str, Any]]) -> array[int]:
    """A worklog/updated page's worklog ids, packed (the pager checked that each is an int)."""
    return array("q", (v["worklogId"] for v in values))


def _worklog_issue(w: dict[str, Any]) -> str | None:
    return str(w.get("issueId"))
