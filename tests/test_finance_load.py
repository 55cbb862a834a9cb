"""Finance exports into the warehouse: quarantine reasons, encodings, idempotence, period replacement."""

from __future__ import annotations

import csv
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from connectors.finance import FinanceStream, load_profile, reader
from connectors.finance.profiles import ProfileError, parse_profile
from flows.runner import run
from sandbox.finance import BUDGET_HEADER, CJI3_HEADER, GENERIC_HEADER
from warehouse.schema import ENTITY_TABLES, quarantine, sync_item

cost_line = ENTITY_TABLES["cost_line"]
HEADER = GENERIC_HEADER  # the generic_costs profile's layout, as the sandbox writes it


def write(
    path: Path,
    rows: list[list[str]],
    encoding: str = "utf-8",
    delimiter: str = ",",
    header: list[str] = HEADER,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def line(
    doc: str,
    day: str,
    amount: str,
    project: str = "P-1",
    currency: str = "EUR",
    hours: str = "",
    text_: str = "Labour Jürgen Müller",
) -> list[str]:
    return [doc, "1", day, project, f"{project}.01", "CC-1", "619000", amount, currency, hours, "0001", text_]


def cji3(doc: str, quantity: str = "", unit: str = "", day: str = "05.01.2026") -> list[str]:
    """A line of the sap_cji3 profile's layout; its key is ``1000|2026|<doc>|1``."""
    period = str(int(day[3:5]))
    return ["1000", "2026", period, day, doc, "1", "P-1", "P-1.01", "CC-1", "619000", "Labour",
            "1.234,50", "EUR", quantity, unit, "00010001"]  # fmt: skip


def write_cji3(path: Path, rows: list[list[str]]) -> Path:
    return write(path, rows, encoding="cp1252", delimiter=";", header=CJI3_HEADER)


def stream(
    folder: Path, profile: str = "generic_costs", pattern: str = "*.csv", **overrides
) -> FinanceStream:
    p = load_profile(profile)
    if overrides:
        p = parse_profile({**asdict(p), **overrides})
    return FinanceStream("finance:test", "cost_lines", folder, pattern, p)


def live(engine: Engine) -> dict[str, Decimal]:
    with engine.connect() as c:
        rows = c.execute(
            select(cost_line.c.source_id, cost_line.c.amount).where(cost_line.c.deleted_at.is_(None))
        )
        return {k: Decimal(str(v)).quantize(Decimal("0.01")) for k, v in rows}


def quarantined(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as c:
        rows = c.execute(
            select(quarantine.c.locator, quarantine.c.field, quarantine.c.reason).order_by(
                quarantine.c.locator
            )
        )
        return [tuple(r) for r in rows]


def table_dump(engine: Engine, table) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(select(table).order_by(*table.primary_key.columns))]


def test_each_bad_line_is_quarantined_with_line_and_reason_while_good_lines_load(
    engine: Engine, tmp_path: Path
) -> None:
    write(
        tmp_path / "drop" / "costs.csv",
        [
            line("D1", "2026-01-05", "100.00"),
            line("D2", "2026-01-32", "100.00"),  # line 3: bad date
            line("D3", "2026-01-05", "ten"),  # line 4: non-numeric amount
            line("D4", "2026-01-05", "5.00", currency="XYZ"),  # line 5: unknown currency
            [
                "D5",
                "1",
                "2026-01-05",
                "",
                "",
                "",
                "619000",
                "7.00",
                "EUR",
                "",
                "",
                "nothing to book on",
            ],  # line 6
            line("D1", "2026-01-05", "100.00"),  # line 7: duplicate of line 2
            ["D6", "1", "", "P-1", "", "", "", "1.00", "EUR", "", "", ""],  # line 8: missing posting date
            line("D7", "2026-01-06", "250.50", hours="3.5"),
        ],
    )
    summary = run(engine, stream(tmp_path / "drop"))
    assert summary.rows_read == 8
    assert summary.rows_quarantined == 6
    assert live(engine) == {"D1|1": Decimal("100.00"), "D7|1": Decimal("250.50")}
    assert quarantined(engine) == [
        ("costs.csv:3", "posting_date", "Posting Date: not a date in format %Y-%m-%d: '2026-01-32'"),
        ("costs.csv:4", "amount", "Amount: not a number: 'ten'"),
        ("costs.csv:5", "currency", "Currency: unknown currency code: 'XYZ'"),
        (
            "costs.csv:6",
            "project_code",
            "no project, WBS or cost centre: ['Project', 'WBS', 'Cost Centre'] all empty",
        ),
        ("costs.csv:7", "source_id", "duplicate line: same key as line 2"),
        ("costs.csv:8", "posting_date", "Posting Date: missing value"),
    ]
    with engine.connect() as c:
        raw = c.execute(select(quarantine.c.raw).where(quarantine.c.locator == "costs.csv:4")).scalar()
    assert raw.startswith("D3,1,2026-01-05,P-1")


def test_a_line_with_several_faults_is_refused_for_its_first_column_and_its_neighbours_load(
    engine: Engine, tmp_path: Path
) -> None:
    # Lines are converted a column at a time: a bad cell must not spill into the lines around it.
    rows = [line(f"D{n}", "2026-02-03", f"{n}.25") for n in range(1, 7)]
    rows[2] = line("D3", "03.02.2026", "zehn", currency="EUX")  # line 4: date, amount and currency bad
    rows[4] = line("D5", "2026-02-03", "1e3x", project="")  # line 6: amount bad; project empty
    write(tmp_path / "drop" / "costs.csv", rows)
    summary = run(engine, stream(tmp_path / "drop"))
    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined) == (6, 4, 2)
    assert live(engine) == {f"D{n}|1": Decimal(f"{n}.25") for n in (1, 2, 4, 6)}
    assert quarantined(engine) == [
        ("costs.csv:4", "posting_date", "Posting Date: not a date in format %Y-%m-%d: '03.02.2026'"),
        ("costs.csv:6", "amount", "Amount: not a number: '1e3x'"),
    ]


def test_a_line_ending_before_a_key_column_reads_it_as_blank(engine: Engine, tmp_path: Path) -> None:
    # Exporters drop trailing empty cells; the key's last column (Text) is then missing, not an error.
    write(
        tmp_path / "drop" / "costs.csv",
        [line("D1", "2026-01-05", "100.00")[:-1], line("D2", "2026-01-05", "5")],
    )
    summary = run(engine, stream(tmp_path / "drop", key_columns=["Document", "Text"]))
    assert (summary.rows_written, summary.rows_quarantined) == (2, 0)
    assert live(engine) == {"D1|": Decimal("100.00"), "D2|Labour Jürgen Müller": Decimal("5.00")}


def test_repeated_values_convert_alike_and_repeated_bad_values_quarantine_each_line(
    engine: Engine, tmp_path: Path
) -> None:
    # Conversions are remembered per column; a bad value must still reject every line that has it.
    write(
        tmp_path / "drop" / "costs.csv",
        [
            line("D1", "2026-02-30", "1.00"),
            line("D2", "2026-01-05", "1.00"),
            line("D3", "2026-02-30", "1.00"),
            line("D4", "2026-01-05", "1.00", hours="7.5"),
        ],
    )
    summary = run(engine, stream(tmp_path / "drop"))
    assert (summary.rows_written, summary.rows_quarantined) == (2, 2)
    assert [q[0] for q in quarantined(engine)] == ["costs.csv:2", "costs.csv:4"]
    with engine.connect() as c:
        got = c.execute(select(cost_line.c.source_id, cost_line.c.posting_date, cost_line.c.hours)).all()
    assert sorted((k, str(d), h) for k, d, h in got) == [
        ("D2|1", "2026-01-05", None),
        ("D4|1", "2026-01-05", Decimal("7.5")),
    ]


def test_sap_quantities_in_an_hours_unit_are_hours_whatever_the_case(engine: Engine, tmp_path: Path) -> None:
    rows = [
        cji3("49", "8,00", "std"),
        cji3("50", "2,00", " H "),
        cji3("51", "3,00", "KG"),
        cji3("52", "", "H"),
    ]
    write_cji3(tmp_path / "drop" / "cji3.csv", rows)
    summary = run(engine, stream(tmp_path / "drop", profile="sap_cji3", hours_units=["h", "Std"]))
    assert (summary.rows_written, summary.rows_quarantined) == (4, 0)
    with engine.connect() as c:
        got = dict(c.execute(select(cost_line.c.document_no, cost_line.c.hours)).all())
    assert got == {"49": Decimal("8.00"), "50": Decimal("2.00"), "51": None, "52": None}


def test_missing_header_column_quarantines_the_file_and_other_files_still_load(
    engine: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    write(drop / "a_bad.csv", [["x"]], header=[h for h in HEADER if h != "Amount"])
    write(drop / "b_good.csv", [line("D1", "2026-01-05", "1.00")])
    summary = run(engine, stream(drop))
    assert summary.status == "succeeded" and summary.rows_quarantined == 1
    ((locator, field, reason),) = quarantined(engine)
    assert (locator, field) == ("a_bad.csv", "file")
    assert "columns ['Amount'] required by profile generic_costs not in header" in reason
    assert live(engine) == {"D1|1": Decimal("1.00")}
    with engine.connect() as c:  # the bad file is not marked loaded: fixing the profile retries it
        assert c.execute(select(sync_item.c.item)).scalars().all() == ["b_good.csv"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings_and_decimal_comma(engine: Engine, tmp_path: Path, encoding: str) -> None:
    drop = tmp_path / "drop"
    write(
        drop / "costs.csv",
        [line("D1", "05.01.2026", "1.234,56-", text_="Müller Sørensen Café")],
        encoding=encoding,
        delimiter=";",
    )
    s = stream(
        drop,
        encoding="utf-8" if encoding.startswith("utf") else "cp1252",
        delimiter=";",
        decimal=",",
        thousands=".",
        date_format="%d.%m.%Y",
    )
    run(engine, s)
    with engine.connect() as c:
        row = c.execute(select(cost_line)).mappings().one()
    assert Decimal(str(row["amount"])) == Decimal("-1234.56")
    assert row["description"] == "Müller Sørensen Café"
    assert str(row["posting_date"]) == "2026-01-05" and row["fiscal_period"] == "2026-01"


def test_wrong_encoding_quarantines_the_file_and_loads_nothing(engine: Engine, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    write(
        drop / "costs.csv",
        [line(f"D{i}", "2026-01-05", "1.00") for i in range(3)]
        + [line("D9", "2026-01-05", "1.00", text_="Müller")],
        encoding="cp1252",
    )
    summary = run(engine, stream(drop))
    assert summary.rows_quarantined == 1 and live(engine) == {}
    ((locator, field, reason),) = quarantined(engine)
    assert (
        (locator, field) == ("costs.csv", "file")
        and "not utf-8 text" in reason
        and "set 'encoding' in profile" in reason
    )


def test_reloading_the_same_file_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    write(
        drop / "costs.csv",
        [line(f"D{i}", "2026-01-05", f"{i}.00") for i in range(50)] + [line("D1", "2026-01-05", "1.00")],
    )
    first = run(engine, stream(drop))
    before = {t: table_dump(engine, ENTITY_TABLES[t]) for t in ("cost_line",)} | {
        "quarantine": table_dump(engine, quarantine),
        "sync_item": table_dump(engine, sync_item),
    }
    second = run(engine, stream(drop))
    after = {t: table_dump(engine, ENTITY_TABLES[t]) for t in ("cost_line",)} | {
        "quarantine": table_dump(engine, quarantine),
        "sync_item": table_dump(engine, sync_item),
    }
    assert (first.rows_written, first.rows_quarantined) == (50, 1)
    assert (second.rows_read, second.rows_written, second.requests) == (0, 0, 0)
    assert before == after
    # A backfill reads the file again and still writes nothing: identical rows are not rewritten.
    third = run(engine, stream(drop), mode="backfill")
    assert (third.rows_read, third.rows_written, third.rows_deleted) == (51, 0, 0)
    assert table_dump(engine, cost_line) == before["cost_line"]


def test_a_period_scoped_profile_replaces_the_periods_a_file_contains_only(
    engine: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    write(
        drop / "2026-04-05_export.csv",
        [
            line("J1", "2026-01-10", "10.00"),
            line("J2", "2026-01-11", "20.00"),
            line("F1", "2026-02-10", "30.00"),
        ],
    )
    run(engine, stream(drop, replace_scope=["fiscal_period"]))
    # Re-export of January: J1 corrected, J2 reversed (gone), J3 new. February is not in the file.
    write(
        drop / "2026-04-20_january-correction.csv",
        [line("J1", "2026-01-10", "15.00"), line("J3", "2026-01-12", "5.00")],
    )
    summary = run(engine, stream(drop, replace_scope=["fiscal_period"]))
    assert (summary.rows_read, summary.rows_written, summary.rows_deleted) == (2, 2, 1)
    assert live(engine) == {"J1|1": Decimal("15.00"), "J3|1": Decimal("5.00"), "F1|1": Decimal("30.00")}
    with engine.connect() as c:  # the reversed line stays, marked deleted: nothing disappears silently
        gone = (
            c.execute(select(cost_line.c.source_id).where(cost_line.c.deleted_at.is_not(None)))
            .scalars()
            .all()
        )
        total = c.execute(
            select(func.sum(cost_line.c.amount)).where(cost_line.c.deleted_at.is_(None))
        ).scalar()
    assert gone == ["J2|1"] and Decimal(str(total)) == Decimal("50.00")


def lines_by_file(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    """source_id → (file it was last loaded from, deleted_reason or None while live)."""
    with engine.connect() as c:
        rows = c.execute(select(cost_line.c.source_id, cost_line.c.file, cost_line.c.deleted_reason))
        return {key: (file, reason) for key, file, reason in rows}


def test_two_daily_files_of_one_month_both_stay_live(engine: Engine, tmp_path: Path) -> None:
    # generic_costs with default settings: daily AP exports of March, each with its own postings.
    drop = tmp_path / "drop"
    write(drop / "ap_2026-03-02.csv", [line("A1", "2026-03-02", "10.00"), line("A2", "2026-03-02", "20.00")])
    first = run(engine, stream(drop))
    write(drop / "ap_2026-03-03.csv", [line("B1", "2026-03-03", "30.00")])
    second = run(engine, stream(drop))
    assert (first.rows_deleted, second.rows_read, second.rows_deleted) == (0, 1, 0)
    assert lines_by_file(engine) == {
        "A1|1": ("ap_2026-03-02.csv", None),
        "A2|1": ("ap_2026-03-02.csv", None),
        "B1|1": ("ap_2026-03-03.csv", None),
    }


def test_a_corrected_file_retires_only_its_own_missing_line_and_leaves_other_files_alone(
    engine: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    a = [line("A1", "2026-03-02", "10.00"), line("A2", "2026-03-02", "20.00"), line("A3", "2026-03-02", "5")]
    write(drop / "ap_a.csv", a)
    write(drop / "ap_b.csv", [line("B1", "2026-03-03", "30.00"), line("B2", "2026-03-03", "40.00")])
    run(engine, stream(drop))
    write(drop / "ap_a.csv", [a[0], a[2]])  # A2 reversed: the corrected file no longer has it
    summary = run(engine, stream(drop))
    assert (summary.rows_read, summary.rows_written, summary.rows_deleted) == (2, 0, 1)
    assert summary.retired == {"ap_a.csv": {"ap_a.csv": 1}}
    assert lines_by_file(engine) == {
        "A1|1": ("ap_a.csv", None),
        "A2|1": ("ap_a.csv", "not in ap_a.csv's new version"),
        "A3|1": ("ap_a.csv", None),
        "B1|1": ("ap_b.csv", None),
        "B2|1": ("ap_b.csv", None),
    }
    assert sum(live(engine).values()) == Decimal("85.00")


def test_a_line_in_two_files_is_one_row_of_the_later_file(engine: Engine, tmp_path: Path) -> None:
    # A line's key is its key columns, never the file name: an export repeating yesterday's posting
    # moves the line to it rather than duplicating it, and yesterday's correction no longer owns it.
    drop = tmp_path / "drop"
    write(drop / "ap_1.csv", [line("A1", "2026-03-02", "10.00"), line("S1", "2026-03-02", "7.00")])
    write(drop / "ap_2.csv", [line("S1", "2026-03-02", "7.50"), line("B1", "2026-03-03", "30.00")])
    first = run(engine, stream(drop))
    assert (first.rows_read, first.rows_written, first.rows_deleted) == (4, 4, 0)  # S1 inserted, then moved
    assert lines_by_file(engine) == {
        "A1|1": ("ap_1.csv", None),
        "S1|1": ("ap_2.csv", None),
        "B1|1": ("ap_2.csv", None),
    }
    assert live(engine)["S1|1"] == Decimal("7.50")
    write(drop / "ap_1.csv", [line("A1", "2026-03-02", "10.00")])  # its correction drops S1
    second = run(engine, stream(drop))
    assert second.rows_deleted == 0
    assert lines_by_file(engine)["S1|1"] == ("ap_2.csv", None)


def test_sap_cji3_replaces_whole_periods_and_reports_the_retired_lines_per_file(
    engine: Engine, tmp_path: Path
) -> None:
    # CJI3 exports are complete per period: a later export of a period retires that period's lines of
    # every earlier file, and the run says how many lines of which file it retired, and why.
    drop = tmp_path / "drop"
    jan, feb = "05.01.2026", "10.02.2026"
    write_cji3(drop / "cji3_1_Q1.csv", [cji3("J1", day=jan), cji3("J2", day=jan), cji3("F1", day=feb)])
    write_cji3(drop / "cji3_2_P02.csv", [cji3("F2", day=feb), cji3("F3", day=feb)])
    first = run(engine, stream(drop, profile="sap_cji3"))
    assert first.retired == {"cji3_2_P02.csv": {"cji3_1_Q1.csv": 1}}
    write_cji3(drop / "cji3_3_P01-P02.csv", [cji3("J1", day=jan), cji3("F2", day=feb)])
    second = run(engine, stream(drop, profile="sap_cji3"))
    assert (second.rows_read, second.rows_deleted) == (2, 2)
    assert second.retired == {"cji3_3_P01-P02.csv": {"cji3_1_Q1.csv": 1, "cji3_2_P02.csv": 1}}
    assert lines_by_file(engine) == {
        "1000|2026|J1|1": ("cji3_3_P01-P02.csv", None),
        "1000|2026|J2|1": ("cji3_1_Q1.csv", "replaced by cji3_3_P01-P02.csv (fiscal period 2026-01)"),
        "1000|2026|F1|1": ("cji3_1_Q1.csv", "replaced by cji3_2_P02.csv (fiscal period 2026-02)"),
        "1000|2026|F2|1": ("cji3_3_P01-P02.csv", None),
        "1000|2026|F3|1": ("cji3_2_P02.csv", "replaced by cji3_3_P01-P02.csv (fiscal period 2026-02)"),
    }


def test_a_file_whose_later_batch_meets_loaded_lines_merges_them_and_still_retires_and_names_repeats(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of two lines. The second file's first batch holds only new March lines (on PostgreSQL they
    # go straight into the table); its second batch meets January's J1 and so turns the rest of the file
    # to the stage. Still: J1 changes, J2 (gone from the new January) is retired, the repeat of M1
    # across the switch is quarantined naming its first line, and M1 keeps its first line's amount.
    monkeypatch.setattr(reader, "BATCH", 2)
    drop = tmp_path / "drop"
    jan, mar = "05.01.2026", "09.03.2026"
    write_cji3(drop / "cji3_1_P01.csv", [cji3("J1", day=jan), cji3("J2", day=jan), cji3("J3", day=jan)])
    run(engine, stream(drop, profile="sap_cji3"))
    later = [
        cji3("M1", day=mar),
        cji3("M2", day=mar),
        cji3("J1", day=jan),
        cji3("M1", day=mar),
        cji3("J3", day=jan),
    ]
    later[2][11] = "99,00"  # J1 changed
    later[3][11] = "1,00"  # the repeat of M1 (line 2) with another amount
    write_cji3(drop / "cji3_2_P01-P03.csv", later)

    second = run(engine, stream(drop, profile="sap_cji3"))

    assert (second.rows_read, second.rows_written, second.rows_deleted) == (5, 4, 1)  # J3: its file changed
    assert second.retired == {"cji3_2_P01-P03.csv": {"cji3_1_P01.csv": 1}}
    assert quarantined(engine) == [
        ("cji3_2_P01-P03.csv:5", "source_id", "duplicate line: same key as line 2")
    ]
    assert live(engine) == {
        "1000|2026|J1|1": Decimal("99.00"),
        "1000|2026|J3|1": Decimal("1234.50"),
        "1000|2026|M1|1": Decimal("1234.50"),
        "1000|2026|M2|1": Decimal("1234.50"),
    }
    assert lines_by_file(engine)["1000|2026|J2|1"] == (
        "cji3_1_P01.csv",
        "replaced by cji3_2_P01-P03.csv (fiscal period 2026-01)",
    )


def test_the_built_in_profiles_replace_by_file_except_sap_cji3() -> None:
    assert [load_profile(n).replace_scope for n in ("generic_costs", "generic_budget", "sap_cji3")] == [
        ("file",),
        ("file",),
        ("fiscal_period",),
    ]
    own = {
        "name": "x",
        "currency": "EUR",
        "columns": {"posting_date": "D", "amount": "A", "project_code": "P"},
    }
    assert parse_profile(own).replace_scope == ("file",)  # a profile that says nothing replaces by file


def test_xlsx_budget_with_period_columns(engine: Engine, tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(BUDGET_HEADER)
    ws.append(["P-1", "P-1.01", 2026, 3, "original", None, "CC-1", 1000.5, "EUR", None])
    ws.append(["P-1", "P-1.01", 2026, 3, "current", None, "CC-1", "tbd", "EUR", None])
    (tmp_path / "drop").mkdir()
    wb.save(tmp_path / "drop" / "budget.xlsx")
    s = FinanceStream("finance:test", "budgets", tmp_path / "drop", "*.xlsx", load_profile("generic_budget"))
    summary = run(engine, s)
    assert (summary.rows_written, summary.rows_quarantined) == (1, 1)
    budget = ENTITY_TABLES["budget"]
    with engine.connect() as c:
        row = c.execute(select(budget)).mappings().one()
    assert (row["fiscal_period"], row["version"], float(row["amount"])) == ("2026-03", "original", 1000.5)
    assert quarantined(engine) == [("budget.xlsx:3", "amount", "Amount: not a number: 'tbd'")]


def test_a_budget_export_scoped_by_period_and_version_replaces_only_those(
    engine: Engine, tmp_path: Path
) -> None:
    from openpyxl import Workbook

    def xlsx(name: str, rows: list[list]) -> None:
        wb = Workbook()
        wb.active.append(BUDGET_HEADER)
        for r in rows:
            wb.active.append(["P-1", *r, None, "CC-1", 100.0, "EUR", None])
        wb.save(tmp_path / "drop" / name)

    (tmp_path / "drop").mkdir()
    xlsx("budget_1.xlsx", [["P-1.01", 2026, 3, "original"], ["P-1.02", 2026, 3, "original"],
                           ["P-1.02", 2026, 3, "current"], ["P-1.02", 2026, 4, "original"]])  # fmt: skip
    xlsx("budget_2.xlsx", [["P-1.01", 2026, 3, "original"]])
    profile = parse_profile(
        {**asdict(load_profile("generic_budget")), "replace_scope": ["fiscal_period", "version"]}
    )
    summary = run(engine, FinanceStream("finance:test", "budgets", tmp_path / "drop", "*.xlsx", profile))
    assert summary.retired == {"budget_2.xlsx": {"budget_1.xlsx": 1}}
    budget = ENTITY_TABLES["budget"]
    with engine.connect() as c:
        gone = c.execute(
            select(
                budget.c.wbs_code, budget.c.fiscal_period, budget.c.version, budget.c.deleted_reason
            ).where(budget.c.deleted_at.is_not(None))
        ).all()
    assert [tuple(g) for g in gone] == [
        (
            "P-1.02",
            "2026-03",
            "original",
            "replaced by budget_2.xlsx (fiscal period 2026-03, version original)",
        )
    ]


def test_profile_errors_name_the_problem() -> None:
    with pytest.raises(ProfileError, match=r"profile 'nope' not found .*sap_cji3"):
        load_profile("nope")
    with pytest.raises(ProfileError, match=r"unknown keys \['delimeter'\]"):
        parse_profile({"name": "x", "delimeter": ";", "columns": {}})
    with pytest.raises(ProfileError, match=r"columns must map \['amount'\]"):
        parse_profile({"name": "x", "currency": "EUR", "columns": {"posting_date": "D", "project_code": "P"}})


def test_sandbox_exports_load_with_exactly_the_planted_defects(engine: Engine, tmp_path: Path) -> None:
    from sandbox.finance import write_exports
    from sandbox.portfolio import generate

    planted = write_exports(generate(7), tmp_path / "exports")
    streams = [
        FinanceStream(
            "finance:acme-sap", "cost_lines", tmp_path / "exports", "cji3_*.csv", load_profile("sap_cji3")
        ),
        FinanceStream(
            "finance:acme-sap",
            "budgets",
            tmp_path / "exports",
            "budget_*.xlsx",
            load_profile("generic_budget"),
        ),
        FinanceStream(
            "finance:acme-ap",
            "cost_lines",
            tmp_path / "exports",
            "invoices_*.csv",
            load_profile("generic_costs"),
        ),
    ]
    for s in streams:
        run(engine, s)
    assert sorted((loc, f) for loc, f, _ in quarantined(engine)) == sorted(
        (p.where, p.detail) for p in planted
    )
    with engine.connect() as c:
        hours = c.execute(
            text("select sum(hours) from cost_line where deleted_at is null and account = '619000'")
        )
        assert hours.scalar() > 0


def test_a_load_collects_garbage_less_often_and_restores_the_collector_even_when_it_fails(
    engine: Engine, tmp_path: Path
) -> None:
    import gc

    from flows.runner import LOADING_GC_THRESHOLD

    before = gc.get_threshold()
    seen: list[int] = []
    write(tmp_path / "drop" / "costs.csv", [line("D1", "2026-01-05", "1.00")])
    run(engine, stream(tmp_path / "drop"), progress=lambda _what, _rows: seen.append(gc.get_threshold()[0]))
    assert seen == [LOADING_GC_THRESHOLD] and gc.get_threshold() == before
    with pytest.raises(FileNotFoundError, match="drop folder"):
        run(engine, stream(tmp_path / "missing"))
    assert gc.get_threshold() == before
