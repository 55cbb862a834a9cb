"""RAID workbooks and CSV logs into the warehouse: the PMO's scales, status words, quarantine, versions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, select

from connectors.raid import RaidStream, load_profile
from connectors.raid.profiles import ProfileError, parse_profile
from flows.runner import run
from model.raid import level, status_category
from sandbox.raid import ISSUE_HEADER, RISK_HEADER
from warehouse.schema import ENTITY_TABLES, quarantine

risk_t, issue_t = ENTITY_TABLES["risk"], ENTITY_TABLES["project_issue"]
SRC = "raid:pmo"


def workbook(path: Path, risks: list[tuple[Any, ...]], issues: list[tuple[Any, ...]]) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "Risks"
    for row in (RISK_HEADER, *risks):
        ws.append(row)
    ws = wb.create_sheet("Issues")
    for row in (ISSUE_HEADER, *issues):
        ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


RISKS = [
    ("R-1", "P-1001", "Supplier late", None, "High", "Very High", None, "Open", datetime(2026, 10, 1),
     "01.12.2026", None, "Weekly call"),
    ("R-2", "P-1001", "Key person leaves", "HR", "35%", 3, "anna.dubois@acme.example", "Open", None, None,
     None, None),
    ("R-3", "P-1002", "Licence audit", None, 0.85, "2", "Ben Bauer", "Closed", None, None,
     datetime(2026, 11, 3), None),
    ("R-4", "P-1002", "Unscored", None, "Sometimes", 3, None, "Open", None, None, None, None),
    (None, "P-1002", "No reference", None, "Low", "Low", None, "Open", None, None, None, None),
]  # fmt: skip
ISSUES = [
    ("I-1", "P-1001", "Test rig broken", None, "(1) High", "Ben Bauer", "In progress", None, "24.11.2026",
     None),
    ("I-2", "P-1002", "Spec unsigned", None, "Urgent", None, "Resolved", None, "30.11.2026", "29.11.2026"),
    ("I-3", "P-1002", "Bad date", None, "Low", None, "Open", None, "31.11.2026", None),
]  # fmt: skip


def stream(folder: Path, pattern: str = "RAID*.xlsx", profile: str = "pmo_raid") -> RaidStream:
    return RaidStream(SRC, "raid", folder, pattern, load_profile(profile, folder))


def rows(engine: Engine, table: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.source_id: r for r in conn.execute(select(table))}


def test_the_builtin_profile_puts_every_scale_on_one_to_five_and_quarantines_bad_lines(
    engine: Engine, tmp_path: Path
) -> None:
    workbook(tmp_path / "drop" / "RAID_1.xlsx", RISKS, ISSUES)
    summary = run(engine, stream(tmp_path / "drop"))
    risks, issues = rows(engine, risk_t), rows(engine, issue_t)
    got = {k: (r.probability, r.impact, r.score, r.owner_name, r.status_category) for k, r in risks.items()}
    assert got == {
        "P-1001/R-1": (4, 5, 20, None, "open"),  # words
        "P-1001/R-2": (2, 3, 6, "anna.dubois@acme.example", "open"),  # "35%" and a number
        "P-1002/R-3": (5, 2, 10, "Ben Bauer", "closed"),  # a percent cell (0.85) and text "2"
    }
    r1 = risks["P-1001/R-1"]
    assert (r1.key, r1.project_code, r1.raised_date, r1.review_date, r1.mitigation) == (
        "R-1", "P-1001", date(2026, 10, 1), date(2026, 12, 1), "Weekly call",
    )  # fmt: skip
    got_i = {k: (r.priority, r.status_category, r.due_date, r.resolved_date) for k, r in issues.items()}
    assert got_i == {
        "P-1001/I-1": ("high", "open", date(2026, 11, 24), None),
        "P-1002/I-2": ("critical", "closed", date(2026, 11, 30), date(2026, 11, 29)),
    }
    with engine.connect() as conn:
        bad = {(q.locator, q.field, q.reason) for q in conn.execute(select(quarantine))}
    assert bad == {
        ("RAID_1.xlsx/Risks:5", "probability",
         "Probability: not a level 1-5, a percentage or a word from Very Low to Very High: 'Sometimes'"),
        ("RAID_1.xlsx/Risks:6", "key", "ID: missing value"),
        ("RAID_1.xlsx/Issues:4", "due_date", "Due Date: not a date in format %d.%m.%Y: '31.11.2026'"),
    }  # fmt: skip
    assert summary.rows_quarantined == 3 and summary.rows_written == 5


def test_a_new_version_retires_the_entries_it_no_longer_holds_of_its_projects(
    engine: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    workbook(drop / "RAID_1.xlsx", RISKS[:3], ISSUES[:2])
    workbook(drop / "RAID_other.xlsx", [("R-9", "P-2000", "Elsewhere", None, "Low", "Low", None, "Open",
                                          None, None, None, None)], [])  # fmt: skip
    run(engine, stream(drop))
    assert run(engine, stream(drop)).rows_written == 0  # nothing new: nothing read again
    workbook(drop / "RAID_1.xlsx", [RISKS[0], RISKS[2]], ISSUES[:2])  # R-2 closed out of the register
    run(engine, stream(drop))
    risks = rows(engine, risk_t)
    gone = risks["P-1001/R-2"]
    assert gone.deleted_at is not None
    assert gone.deleted_reason == "replaced by RAID_1.xlsx (project code P-1001)"
    assert [k for k, r in sorted(risks.items()) if r.deleted_at is None] == [
        "P-1001/R-1", "P-1002/R-3", "P-2000/R-9",  # another workbook's project stays
    ]  # fmt: skip


def test_a_workbook_missing_a_column_is_quarantined_by_name_and_loads_nothing(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "drop" / "RAID_1.xlsx", RISKS[:1], ISSUES[:1])
    from openpyxl import load_workbook

    wb = load_workbook(path)
    wb["Issues"]["E1"] = "Prio"
    wb.save(path)
    run(sqlite_engine, stream(tmp_path / "drop"))
    with sqlite_engine.connect() as conn:
        (q,) = conn.execute(select(quarantine)).all()
    assert (q.locator, q.field) == ("RAID_1.xlsx", "file")
    assert q.reason.startswith("RAID_1.xlsx/Issues:1: columns ['Priority'] required by profile pmo_raid")
    assert rows(sqlite_engine, risk_t) == {}  # the risks of the same file wait for the file to be fixed


def test_a_csv_profile_with_its_own_words_and_statuses(sqlite_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    (tmp_path / "risks.toml").write_text(
        'name = "ampel"\nformat = "csv"\ndelimiter = ";"\nencoding = "cp1252"\ndate_format = "%Y-%m-%d"\n'
        'closed_statuses = ["Erledigt"]\nlevels = { "Rot" = 5, "Gelb" = 3, "Grün" = 1 }\n'
        '[risks]\ncolumns = { key = "Nr", project_code = "Projekt", title = "Risiko", '
        'probability = "Wahrscheinlichkeit", impact = "Auswirkung", status = "Status" }\n',
        encoding="utf-8",
    )
    (tmp_path / "drop" / "risiken.csv").write_bytes(
        "Nr;Projekt;Risiko;Wahrscheinlichkeit;Auswirkung;Status\n"
        "1;P-1;Lieferverzug;Rot;Gelb;Offen\n2;P-1;Prüfung;Grün;4;Erledigt\n".encode("cp1252")
    )
    run(sqlite_engine, stream(tmp_path / "drop", "*.csv", str(tmp_path / "risks.toml")))
    got = {k: (r.title, r.probability, r.impact, r.score, r.status_category)
           for k, r in rows(sqlite_engine, risk_t).items()}  # fmt: skip
    assert got == {"P-1/1": ("Lieferverzug", 5, 3, 15, "open"), "P-1/2": ("Prüfung", 1, 4, 4, "closed")}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "xlsx", "colour": 1, "risks": {}}, "profile p: unknown keys ['colour']"),
        ({"risks": {"columns": {"key": "ID", "title": "T"}}},
         "profile p: risks: columns must map ['project_code']"),
        ({"risks": {"columns": {"key": "ID", "project_code": "P", "title": "T", "odds": "O"}}},
         "profile p: risks: columns maps unknown fields ['odds']"),
        ({"format": "csv", "risks": {"columns": {"key": "I", "project_code": "P", "title": "T"}},
          "issues": {"columns": {"key": "I", "project_code": "P", "title": "T"}}},
         "profile p: a CSV file holds one log: give [risks] and [issues] a profile each"),
        ({}, "profile p: needs a [risks] or an [issues] table"),
    ],
)  # fmt: skip
def test_a_broken_profile_is_named_with_its_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError) as e:
        parse_profile({"name": "p", **data})
    assert str(e.value).startswith(message)


def test_the_pmo_scales() -> None:
    assert [level(v) for v in ("Very Low", "low", "(3) Medium", "4 - High", "VH", None, " ")] == [
        1, 2, 3, 4, 5, None, None,
    ]  # fmt: skip
    assert [level(v) for v in ("20%", "21%", 0.6, 61, "100", 1.0, 5)] == [1, 2, 3, 4, 5, 1, 5]
    for bad in ("often", 0, -1, 101, True):
        with pytest.raises(ValueError):
            level(bad)
    assert [status_category(s) for s in ("(3) Closed", "Done", "Active", None, "")] == [
        "closed", "closed", "open", "open", "open",
    ]  # fmt: skip
    assert Decimal(4) * level("High") == 16


def test_config_check_names_a_bad_raid_source_capacity_and_as_of_at_their_lines(tmp_path: Path) -> None:
    from flows import config as cfg

    (tmp_path / "raid").mkdir()
    path = tmp_path / "pmo.toml"
    path.write_text(
        '[sources.raid]\ntype = "raid"\nfolder = "raid"\nprofile = "nope"\n\n'
        '[reconcile]\nas_of = "yesterday"\nrisk_high_score = 12\n\n'
        '[capacity]\ncountry = "XX"\nworking_days = ["Mon", "Tue"]\n',
        encoding="utf-8",
    )
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(path)
    assert e.value.problems == [
        f"{path}:4: sources.raid.profile: profile 'nope' not found (built-in profiles: pmo_raid)",
        f"{path}:7: reconcile.as_of: expected a date such as 2026-12-02, got 'yesterday'",
        f"{path}:11: capacity.country: Country XX not available",
    ]
