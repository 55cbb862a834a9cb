"""Render the portfolio's costs and budgets as ERP exports, with planted bad lines.

Files (named by export date, so a correction sorts after what it corrects; ``portfolio.finance_files``):
- ``cji3_<export>_<first month>-<last month>.csv``, two of them, the recent one exported on the as-of
  date: SAP CJI3 line items (cp1252, ';', decimal comma).
- ``cji3_<export>_<YYYY-MM>-correction.csv``: a corrected re-export of the older file's last month (one
  non-labour line changed, one gone: no labour figure moves).
- ``invoices_<export>.csv``: supplier invoices from the AP system in the generic layout (UTF-8 with BOM);
  its exports stopped ``STALE_DAYS`` before the as-of date, so it holds nothing posted since.
- ``budget_<export>.xlsx``: budgets per project, WBS, month and version, phased over the baseline.
The bytes are deterministic for a seed, XLSX included, so re-generating changes nothing.
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox.portfolio import (
    HOURLY_RATE,
    LABOUR_ACCOUNT,
    NON_LABOUR,
    STALE_DAYS,
    Planted,
    Portfolio,
    correction_period,
    finance_files,
    month,
    months_between,
    posting_date,
    split_month,
)

CJI3_HEADER = [
    "CO Area",
    "Fiscal Year",
    "Period",
    "Posting Date",
    "Document Number",
    "Posting row",
    "Project Definition",
    "WBS Element",
    "Sender Cost Center",
    "Cost Element",
    "Name",
    "Val/COArea Crcy",
    "COArea Currency",
    "Total Quantity",
    "Unit of Measure",
    "Personnel Number",
]
GENERIC_HEADER = [
    "Document",
    "Line",
    "Posting Date",
    "Project",
    "WBS",
    "Cost Centre",
    "Account",
    "Amount",
    "Currency",
    "Hours",
    "Employee",
    "Text",
]
BUDGET_HEADER = [
    "Project",
    "WBS",
    "Fiscal Year",
    "Period",
    "Version",
    "Account",
    "Cost Centre",
    "Amount",
    "Currency",
    "Hours",
]
FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
BAD_KINDS = ("bad_line", "duplicate_line")
BAD_CJI3: dict[str, Callable[[list[str]], None]] = {  # planted field → how the row is spoiled
    "posting_date": lambda r: r.__setitem__(3, "31.02.2026"),  # not a date
    "amount": lambda r: r.__setitem__(11, "12x,50"),  # not a number
    "currency": lambda r: r.__setitem__(12, "EUX"),  # unknown currency
    "project_code": lambda r: r.__setitem__(slice(6, 9), ["", "", ""]),  # no anchor
}


def sap_amount(value: Decimal) -> str:
    """German SAP display: 1.234,56 and a trailing minus for credits."""
    text = f"{abs(value):,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return text + ("-" if value < 0 else "")


def cost_lines(pf: Portfolio) -> list[dict]:
    """The actual costs as the ERP holds them: labour per person, WBS and week (posted on the Friday, or
    the month's last day when the week runs into the next month), monthly non-labour per project; plus
    the planted D4 (one labour amount too high) and D8 (lines on a project code no other tool knows)."""
    rng = random.Random(pf.seed * 31 + 1)
    weekly: dict[tuple[str, str, date], Decimal] = defaultdict(Decimal)
    for b in pf.bookings:
        weekly[(b.employee_number, pf.task(b.task_key).wbs, posting_date(b.work_date, pf.end))] += b.hours
    wrong = {tuple(p.parts): Decimal(p.detail) for p in pf.plants("finance_rate_error", "finance")}
    lines: list[dict] = []
    for (emp, wbs, posting), hours in sorted(weekly.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
        person = pf.person(emp)
        proj = pf.project(wbs.rsplit(".", 1)[0])
        lines.append(
            dict(
                posting=posting,
                project=proj.code,
                wbs=wbs,
                cc=person.cost_centre,
                account=LABOUR_ACCOUNT,
                text=f"Labour {person.name}",
                amount=hours * HOURLY_RATE[person.department] + wrong.get((wbs, emp, posting.isoformat()), 0),
                hours=hours,
                emp=emp,
            )
        )
    for proj in pf.projects:  # the month's non-labour costs, while the project runs
        for first in months_between(proj.start, min(proj.stopped or proj.finish, pf.end)):
            account, text = rng.choice(NON_LABOUR)
            posting = max(proj.start, first + timedelta(days=rng.randrange(0, 27)))
            if posting <= min(proj.stopped or proj.finish, pf.end):
                lines.append(
                    dict(posting=posting, project=proj.code, wbs=proj.wbs[0], cc=proj.cost_centre,
                         account=account, text=text, amount=proj.monthly_costs, hours=None, emp="")
                )  # fmt: skip
    for p in pf.plants("orphan_cost", "finance"):  # D8: three non-labour lines, in the recent export
        for n, (account, text) in enumerate(NON_LABOUR):
            posting = pf.as_of - timedelta(days=100) + timedelta(weeks=(0, 2, 9)[n])
            amount = Decimal(1200 * n + 850)
            lines.append(dict(posting=posting, project=p.where, wbs=f"{p.where}.01", cc="CC-4100",
                              account=account, text=text, amount=amount, hours=None, emp=""))  # fmt: skip
    lines.sort(key=lambda ln: (ln["posting"], ln["wbs"], ln["account"], ln["emp"]))
    for n, ln in enumerate(lines):
        ln["doc"] = f"{4900000000 + n // 5}"
        ln["row"] = str(n % 5 + 1)
    return lines


def _cji3_row(ln: dict) -> list[str]:
    return [
        "1000",
        str(ln["posting"].year),
        str(ln["posting"].month),
        ln["posting"].strftime("%d.%m.%Y"),
        ln["doc"],
        ln["row"],
        ln["project"],
        ln["wbs"],
        ln["cc"],
        ln["account"],
        ln["text"],
        sap_amount(ln["amount"]),
        "EUR",
        sap_amount(ln["hours"]) if ln["hours"] is not None else "",
        "H" if ln["hours"] is not None else "",
        ln["emp"],
    ]


def _bad(pf: Portfolio, file: str) -> list[Planted]:
    """The planted bad and duplicate lines of one export file, by line number."""
    mine = [p for p in pf.planted if p.kind in BAD_KINDS and p.where.startswith(f"{file}:")]
    return sorted(mine, key=lambda p: int(p.where.rsplit(":", 1)[1]))


def write_exports(pf: Portfolio, folder: Path) -> list[Planted]:
    """Write every export for ``pf`` into ``folder``; returns the planted bad lines (from ``pf.planted``)."""
    folder.mkdir(parents=True, exist_ok=True)
    names, split = finance_files(pf), split_month(pf)
    lines = cost_lines(pf)
    older = [ln for ln in lines if ln["posting"] < split]
    recent = [ln for ln in lines if ln["posting"] >= split]

    rows_older = [_cji3_row(ln) for ln in older]
    for i, p in enumerate(_bad(pf, names["older"])):  # each at its planted line (header = line 1)
        at = int(p.where.rsplit(":", 1)[1]) - 2
        row = list(rows_older[at - 1] if p.kind == "duplicate_line" else rows_older[at])
        if p.kind == "bad_line":
            row[4], row[5] = f"49999990{i:02d}", "1"
            BAD_CJI3[p.detail](row)
        rows_older.insert(at, row)
    _write_csv(folder / names["older"], CJI3_HEADER, rows_older, ";", "cp1252")
    _write_csv(folder / names["recent"], CJI3_HEADER, [_cji3_row(ln) for ln in recent], ";", "cp1252")

    fixed = [dict(ln) for ln in older if month(ln["posting"]) == correction_period(pf)]
    changed, reversed_ = [i for i, ln in enumerate(fixed) if ln["hours"] is None][:2]
    fixed[changed]["amount"] += Decimal("100.00")  # a corrected amount, and a reversed posting: not labour
    del fixed[reversed_]
    _write_csv(folder / names["correction"], CJI3_HEADER, [_cji3_row(ln) for ln in fixed], ";", "cp1252")

    rng = random.Random(pf.seed * 31 + 2)
    invoices = []
    for n, proj in enumerate(pf.projects):  # the supplier invoices posted before AP went quiet
        posting = proj.start + timedelta(days=rng.randrange(5, 60))
        if proj.invoice and posting <= pf.as_of - timedelta(days=STALE_DAYS + 1):
            invoices.append(
                [f"AP-{7000 + n}", "1", posting.isoformat(), proj.code, proj.wbs[1], proj.cost_centre,
                 "430000", f"{proj.invoice:.2f}", "EUR", "", "", f"Supplier invoice {proj.name}"]
            )  # fmt: skip
    for p in _bad(pf, names["invoices"]):
        bad = [
            "AP-7999",
            "1",
            f"{pf.start.year}-02-30",
            pf.projects[0].code,
            "",
            "",
            "430000",
            "100.00",
            "EUR",
            "",
            "",
            "planted: bad date",
        ]
        invoices.insert(int(p.where.rsplit(":", 1)[1]) - 2, bad)
    _write_csv(folder / names["invoices"], GENERIC_HEADER, invoices, ",", "utf-8-sig")

    budget_rows = []
    for proj in pf.projects:
        months = months_between(proj.start, proj.baseline_finish)
        for version, factor in (("original", Decimal("0.95")), ("current", Decimal("1.00"))):
            for m, share in zip(months, proj.phasing, strict=True):
                per_month = (proj.budget * factor * share / len(proj.wbs)).quantize(Decimal("0.01"))
                for wbs in proj.wbs:
                    budget_rows.append(
                        [
                            proj.code,
                            wbs,
                            m.year,
                            m.month,
                            version,
                            "",
                            proj.cost_centre,
                            float(per_month),
                            "EUR",
                            None,
                        ]
                    )
    for p in _bad(pf, names["budget"]):
        bad = [
            pf.projects[0].code,
            pf.projects[0].wbs[0],
            pf.start.year,
            13,
            "original",
            "",
            "CC-4100",
            "tbd",
            "EUR",
            None,
        ]
        budget_rows.insert(int(p.where.rsplit(":", 1)[1]) - 2, bad)
    _write_xlsx(folder / names["budget"], BUDGET_HEADER, budget_rows)
    return [p for p in pf.planted if p.kind in BAD_KINDS]


def _write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str, encoding: str) -> None:
    # cp1252 cannot hold every name (Yılmaz): SAP writes "?" there, and so do we.
    with path.open("w", encoding=encoding, errors="replace", newline="") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)


def _write_xlsx(path: Path, header: list[str], rows: list[list]) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Budget")
    ws.append(header)
    for r in rows:
        ws.append(r)
    save_stable(wb, path)


def save_stable(wb: Any, path: Path) -> None:
    """Save an openpyxl workbook so the same content gives the same bytes (and the same hash): a re-run
    of the sandbox must not look like a new export."""
    from datetime import datetime

    wb.properties.created = wb.properties.modified = datetime(2026, 1, 1)
    buf = io.BytesIO()
    wb.save(buf)
    # Re-pack with fixed entry times so the same budget gives the same bytes (and the same hash).
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2026-01-01T00:00:00Z", data)
            dst.writestr(fixed, data)
