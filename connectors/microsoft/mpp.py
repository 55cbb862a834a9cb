"""``.mpp`` files through the optional ``mpxj`` extra (Java via JPype), mapped by the MSPDI mapping.

mpxj reads the binary file; this module renders what it read as MSPDI-shaped element dicts (ISO-8601
durations, currency ×100, the same element names), so ``ProjectFileMapper`` maps both formats with one
code path and an .mpp and its MSPDI twin give the same records.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.microsoft.mspdi import ProjectFileError

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


def _start_jvm() -> Any:
    import jpype
    import mpxj  # noqa: F401  (puts the mpxj jars on the class path)

    if not jpype.isJVMStarted():
        jpype.startJVM()
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
    return f"PT{int(h)}H{int(m)}M{s.normalize()}S"


def _cur(v: Any) -> str:
    return "" if v is None else str(Decimal(str(v.doubleValue())) * 100)


def _dt(v: Any) -> str:
    return "" if v is None else str(v.toString())[:19]


def read_mpp(path: Path, name: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if (why := available()) is not None:
        raise ProjectFileError(f"{name or path}: {why}")
    _start_jvm()
    try:
        from org.mpxj.reader import UniversalProjectReader  # type: ignore[import-not-found]
    except ImportError:  # mpxj before 14 used the net.sf.mpxj package
        from net.sf.mpxj.reader import UniversalProjectReader  # type: ignore[import-not-found]

    try:
        project = UniversalProjectReader().read(str(path))
    except Exception as e:  # a Java exception: the file as a whole is unreadable
        raise ProjectFileError(f"{name or path}: mpxj cannot read it: {e}") from None
    props = project.getProjectProperties()
    for t in project.getTasks():
        yield "task", _task(t)
    for r in project.getResources():
        yield (
            "resource",
            {
                "UID": str(r.getUniqueID()),
                "Name": str(r.getName() or ""),
                "EmailAddress": str(r.getEmailAddress() or ""),
                "Type": {"WORK": "1", "MATERIAL": "0", "COST": "2"}.get(str(r.getType()), "1"),
                "Group": str(r.getGroup() or ""),
                "Code": str(r.getCode() or ""),
            },
        )
    for a in project.getResourceAssignments():
        yield (
            "assignment",
            {
                "UID": str(a.getUniqueID()),
                "TaskUID": str(a.getTaskUniqueID()),
                "ResourceUID": str(a.getResourceUniqueID() or ""),
                "Work": _iso(a.getWork()),
                "ActualWork": _iso(a.getActualWork()),
                "RemainingWork": _iso(a.getRemainingWork()),
                "Cost": _cur(a.getCost()),
                "ActualCost": _cur(a.getActualCost()),
                "Start": _dt(a.getStart()),
                "Baseline": [
                    {"Number": "0", "Work": _iso(a.getBaselineWork()), "Cost": _cur(a.getBaselineCost())}
                ],
            },
        )
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
        },
    )


def _task(t: Any) -> dict[str, Any]:
    pct = t.getPercentageComplete()
    return {
        "UID": str(t.getUniqueID()),
        "ID": str(t.getID()),
        "Name": str(t.getName() or ""),
        "WBS": str(t.getWBS() or ""),
        "OutlineLevel": str(t.getOutlineLevel() or 0),
        "Summary": "1" if t.getSummary() else "0",
        "Milestone": "1" if t.getMilestone() else "0",
        "Start": _dt(t.getStart()),
        "Finish": _dt(t.getFinish()),
        "Created": _dt(t.getCreateDate()),
        "Deadline": _dt(t.getDeadline()),
        "ActualFinish": _dt(t.getActualFinish()),
        "PercentComplete": "" if pct is None else str(int(pct.doubleValue())),
        "Work": _iso(t.getWork()),
        "ActualWork": _iso(t.getActualWork()),
        "RemainingWork": _iso(t.getRemainingWork()),
        "Cost": _cur(t.getCost()),
        "ActualCost": _cur(t.getActualCost()),
        "Baseline": [
            {
                "Number": "0",
                "Start": _dt(t.getBaselineStart()),
                "Finish": _dt(t.getBaselineFinish()),
                "Work": _iso(t.getBaselineWork()),
                "Cost": _cur(t.getBaselineCost()),
            }
        ],
    }
