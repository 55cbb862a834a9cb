"""``.mpp`` files through the optional ``mpxj`` extra (Java via JPype), mapped by the MSPDI mapping.

mpxj reads the binary file; this module renders what it read as MSPDI-shaped element dicts (ISO-8601
durations, currency ×100, the same element names), so ``ProjectPlan`` maps both formats with one
code path and an .mpp and its MSPDI twin give the same records.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from connectors.microsoft.mspdi import (
    TP_ACTUAL_COST,
    TP_ACTUAL_WORK,
    TP_BASELINE_COST,
    TP_BASELINE_WORK,
    TP_REMAINING_WORK,
    Elements,
    ProjectFileError,
)

MISSING = (
    "reading .mpp files needs the optional mpxj extra and Java 17: pip install 'pmo-sync[mpp]'"
    " (or save the plan as XML from Microsoft Project)"
)


def available() -> str | None:
    """None when .mpp files can be read here, else the reason they cannot."""
    try:
        import jpype  # noqa: F401
        import mpxj  # noqa: F401
    except ImportError:
        return MISSING
    return None


# log4j (used by mpxj's dependencies) would print a "no logging provider" line on stdout, where
# ``pmo inspect`` writes its JSON: its own simple logger, switched off, keeps stdout to the records.
JVM_OPTIONS = (
    "-Dlog4j2.loggerContextFactory=org.apache.logging.log4j.simple.SimpleLoggerContextFactory",
    "-Dlog4j2.statusLoggerLevel=OFF",
    "-Dlog4j2.simplelogLevel=OFF",
)


def _start_jvm() -> Any:
    import jpype
    import mpxj  # noqa: F401  (puts the mpxj jars on the class path)

    if not jpype.isJVMStarted():
        jpype.startJVM(*JVM_OPTIONS)
    return jpype


def _iso(duration: Any, hours_per_day: float = 8.0) -> str:
    """An mpxj Duration → MSPDI ``PT#H#M#S`` in hours."""
    if duration is None:
        return ""
    units = str(duration.getUnits().toString()).lower()
    value = Decimal(str(duration.getDuration()))
    factor = {
        "h": 1,
        "m": Decimal(1) / 60,
        "d": Decimal(str(hours_per_day)),
        "w": Decimal(str(hours_per_day * 5)),
    }
    hours = value * Decimal(factor.get(units[:1], 1))
    seconds = (hours * 3600).quantize(Decimal("0.001"))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"PT{int(h)}H{int(m)}M{s.normalize():f}S"


def _cur(v: Any) -> str:
    return "" if v is None else str(Decimal(str(v.doubleValue())) * 100)


def _dt(v: Any) -> str:
    return "" if v is None else str(v.toString())[:19]


def read_mpp(path: Path, name: str = "") -> Elements:
    """Read the file with mpxj now (an unreadable file fails here, as a whole); each call of the result
    is one pass over its elements, MSPDI-shaped, the project's own first."""
    if (why := available()) is not None:
        raise ProjectFileError(f"{name or path}: {why}")
    _start_jvm()
    from org.mpxj.reader import UniversalProjectReader  # type: ignore[import-not-found]

    try:
        project = UniversalProjectReader().read(str(path))
    except Exception as e:  # a Java exception: the file as a whole is unreadable
        raise ProjectFileError(f"{name or path}: mpxj cannot read it: {e}") from None
    if project is None:
        raise ProjectFileError(f"{name or path}: mpxj does not recognise it as a project file")
    return partial(_elements, project)


def _elements(project: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    props = project.getProjectProperties()
    start = props.getDefaultStartTime()
    guid = props.getGUID()
    yield (
        "project",
        {
            "GUID": str(guid) if guid is not None else "",
            "Title": str(props.getProjectTitle() or ""),
            "Name": str(props.getName() or ""),
            "Manager": str(props.getManager() or ""),
            "StartDate": _dt(props.getStartDate()),
            "FinishDate": _dt(props.getFinishDate()),
            "CurrencyCode": str(props.getCurrencyCode() or ""),
            "DefaultStartTime": str(start.toString()) if start is not None else "",
            "DefaultFinishTime": _dt(props.getDefaultEndTime()),
            "LastSaved": _dt(props.getLastSaved()),
        },
    )
    for t in project.getTasks():
        yield "task", _task(t)
    for r in project.getResources():
        yield (
            "resource",
            {
                "UID": str(r.getUniqueID()),
                "IsNull": "1" if r.getNull() else "0",
                "Name": str(r.getName() or ""),
                "EmailAddress": str(r.getEmailAddress() or ""),
                "Type": {"WORK": "1", "MATERIAL": "0", "COST": "2"}.get(str(r.getType()), "1"),
                "Group": str(r.getGroup() or ""),
                "Code": str(r.getCode() or ""),
            },
        )
    for a in project.getResourceAssignments():
        yield "assignment", _assignment(a)


def _assignment(a: Any) -> dict[str, Any]:
    return {
        "UID": str(a.getUniqueID()),
        "TaskUID": str(a.getTaskUniqueID()),
        "ResourceUID": str(a.getResourceUniqueID() or ""),
        "Work": _iso(a.getWork()),
        "ActualWork": _iso(a.getActualWork()),
        "RemainingWork": _iso(a.getRemainingWork()),
        "Cost": _cur(a.getCost()),
        "ActualCost": _cur(a.getActualCost()),
        "Start": _dt(a.getStart()),
        "Baseline": _baseline(a, Work=a.getBaselineWork(), Cost=a.getBaselineCost()),
        "TimephasedData": _timephased(a),
    }


def _windows(raw: Any) -> Any:
    """mpxj's raw timephased segments cut at each midnight: calendar days, which mpxj values exactly
    over the assignment's calendar (the MSPDI side splits its segments by the same calendar)."""
    from java.time import LocalDateTime  # type: ignore[import-not-found]
    from java.util import ArrayList  # type: ignore[import-not-found]
    from org.mpxj import LocalDateTimeRange  # type: ignore[import-not-found]

    ranges = ArrayList()
    for seg in raw or ():
        day, end = (datetime.fromisoformat(str(d.toString())) for d in (seg.getStart(), seg.getFinish()))
        while day < end:
            nxt = min(datetime.combine(day.date() + timedelta(1), time()), end)
            ranges.add(
                LocalDateTimeRange(LocalDateTime.parse(day.isoformat()), LocalDateTime.parse(nxt.isoformat()))
            )
            day = nxt
    return ranges


def _timephased(a: Any) -> list[dict[str, str]]:
    """mpxj's timephased values as MSPDI TimephasedData (types 1 remaining, 2 actual, 4/5 baseline work
    and cost, 6 actual cost): the same day segments as the MSPDI twin, each valued by mpxj over the
    assignment's calendar, so both formats map to the same daily PlannedWork."""
    from org.mpxj import TimeUnit  # type: ignore[import-not-found]

    hours = TimeUnit.HOURS
    series = (
        (
            TP_REMAINING_WORK,
            a.getRawTimephasedRemainingRegularWork(),
            a.getTimephasedRemainingRegularWork,
            (hours,),
            _iso,
        ),
        (
            TP_ACTUAL_WORK,
            a.getRawTimephasedActualRegularWork(),
            a.getTimephasedActualRegularWork,
            (hours,),
            _iso,
        ),
        (
            TP_BASELINE_WORK,
            a.getRawTimephasedBaselineWork(0),
            partial(a.getTimephasedBaselineWork, 0),
            (hours,),
            _iso,
        ),
        (
            TP_BASELINE_COST,
            a.getRawTimephasedBaselineCost(0),
            partial(a.getTimephasedBaselineCost, 0),
            (),
            _cur,
        ),
        (TP_ACTUAL_COST, a.getRawTimephasedActualCost(), a.getTimephasedActualCost, (), _cur),
    )
    out: list[dict[str, str]] = []
    for kind, raw, values_of, unit, render in series:
        ranges = _windows(raw)
        if ranges.isEmpty():
            continue
        for r, v in zip(ranges, values_of(ranges, *unit), strict=True):
            if v is not None:
                out.append(
                    {
                        "Type": str(kind),
                        "Start": _dt(r.getStart()),
                        "Finish": _dt(r.getEnd()),
                        "Value": render(v),
                    }
                )
    return out


def _task(t: Any) -> dict[str, Any]:
    pct = t.getPercentageComplete()
    return {
        "UID": str(t.getUniqueID()),
        "ID": str(t.getID()),
        "IsNull": "1" if t.getNull() else "0",
        "Name": str(t.getName() or ""),
        "WBS": str(t.getWBS() or ""),
        "OutlineLevel": str(t.getOutlineLevel() or 0),
        "Summary": "1" if t.getSummary() else "0",
        "Milestone": "1" if t.getMilestone() else "0",
        "Start": _dt(t.getStart()),
        "Finish": _dt(t.getFinish()),
        "CreateDate": _dt(t.getCreateDate()),
        "Deadline": _dt(t.getDeadline()),
        "ActualFinish": _dt(t.getActualFinish()),
        "PercentComplete": "" if pct is None else str(int(pct.doubleValue())),
        "Work": _iso(t.getWork()),
        "ActualWork": _iso(t.getActualWork()),
        "RemainingWork": _iso(t.getRemainingWork()),
        "Cost": _cur(t.getCost()),
        "ActualCost": _cur(t.getActualCost()),
        "Baseline": _baseline(
            t,
            Start=t.getBaselineStart(),
            Finish=t.getBaselineFinish(),
            Work=t.getBaselineWork(),
            Cost=t.getBaselineCost(),
        ),
    }


def _baseline(item: Any, **values: Any) -> list[dict[str, str]]:
    """Baseline 0 as MSPDI writes it, or none when it was never saved: mpxj reports an unsaved
    baseline's work and cost as 0, and a baseline of 0 is not what the plan says."""
    if item.getBaselineStart() is None and item.getBaselineFinish() is None:
        return []
    render = {"Start": _dt, "Finish": _dt, "Work": _iso, "Cost": _cur}
    return [{"Number": "0", **{k: render[k](v) for k, v in values.items()}}]
