"""The fast finance load equals the cell-by-cell one: bulk number columns in the reader, COPY into the
stage on PostgreSQL. Same warehouse rows, same quarantine, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select
from test_finance_load import cji3, write_cji3

from connectors.base import BadValue, Line
from connectors.finance import ExportFile, FinanceStream, load_profile
from connectors.finance.parse import parse_decimal
from connectors.finance.reader import BATCH, _Decimals
from flows.runner import run
from model.records import CostLine, Rejected
from warehouse.load import StagedLoad
from warehouse.schema import ENTITY_TABLES, quarantine, sync_item
from warehouse.sync import SyncRun

SOURCE = "finance:acme-sap"
cost_line = ENTITY_TABLES["cost_line"]


def planted_export(path: Path) -> Path:
    """A CJI3 export of two reader batches. The first is plain apart from a bad date, an extra cell,
    cp1252 text, credits and a duplicate key, so its amounts convert in bulk; the second holds what
    sends a column cell by cell: a bad decimal, NaN, a blank amount, a line cut short."""
    rows = [cji3(f"49{n:08d}", day=f"{n % 28 + 1:02d}.{n % 12 + 1:02d}.2026") for n in range(BATCH + 40)]
    for n, row in enumerate(rows):
        row[11] = f"{n * 7:,}".replace(",", ".") + f",{n % 100:02d}" + ("-" if n % 9 == 0 else "")
    rows[3][10] = "Reisekosten Müller – Kölner Büro €"  # cp1252 characters
    rows[5][3] = "31.02.2026"  # bad date
    rows[8] = [*rows[8], "an extra cell"]  # one cell too many: the extra one is unused
    rows[12] = list(rows[2])  # a duplicate of line 4's key
    rows[BATCH + 1][11] = "12x,50"  # bad decimal
    rows[BATCH + 2][11] = "NaN"
    rows[BATCH + 3][11] = ""  # blank amount
    rows[BATCH + 4] = rows[BATCH + 4][:6]  # a line cut short: no amount, no project
    rows[20:20] = [[], [""] * 16]  # an empty line and a line of empty cells
    return write_cji3(path, rows)


def dump(engine: Engine) -> tuple[list[tuple], list[tuple]]:
    """The live cost lines (every data column) and the quarantine, in a stable order."""
    data = [cost_line.c[c] for c in CostLine.field_names()]
    q = quarantine.c
    with engine.connect() as c:
        rows = c.execute(select(*data).order_by(cost_line.c.source_id)).all()
        bad = c.execute(select(q.source, q.stream, q.locator, q.field, q.reason, q.raw).order_by(q.locator))
        return [tuple(r) for r in rows], [tuple(r) for r in bad]


def load_cell_by_cell(engine: Engine, path: Path) -> None:
    """The reference: every cell through its own converter, every row staged by INSERT."""
    item = ExportFile(path, path.name, SOURCE, load_profile("sap_cji3"), bulk=False)
    with SyncRun(engine, SOURCE, "cost_lines") as sync:
        staged = StagedLoad(sync.connection, CostLine, item.replace_scope, copy=False)
        for batch in item.lines():
            duplicates = staged.add([x for x in batch if isinstance(x, Line)])
            sync.reject([x for x in batch if isinstance(x, Rejected)] + duplicates)
        assert staged.merge(item.name).copied == 0


def test_the_fast_load_gives_the_rows_and_quarantine_of_the_cell_by_cell_load(
    engine: Engine, tmp_path: Path
) -> None:
    path = planted_export(tmp_path / "drop" / "cji3_2026.csv")
    load_cell_by_cell(engine, path)
    reference = dump(engine)
    with engine.begin() as c:
        for table in (cost_line, quarantine, sync_item):
            c.execute(delete(table))

    summary = run(engine, FinanceStream(SOURCE, "cost_lines", path.parent, "*.csv", load_profile("sap_cji3")))

    rows, bad = dump(engine)
    assert (rows, bad) == reference
    assert summary.rows_written == len(rows) == BATCH + 40 - 6
    assert [(locator, field, reason) for _, _, locator, field, reason, _ in bad] == [
        ("cji3_2026.csv:14", "source_id", "duplicate line: same key as line 4"),
        ("cji3_2026.csv:5005", "amount", "Val/COArea Crcy: not a number: '12x,50'"),
        ("cji3_2026.csv:5006", "amount", "Val/COArea Crcy: not a finite number: 'NaN'"),
        ("cji3_2026.csv:5007", "amount", "Val/COArea Crcy: missing value"),
        ("cji3_2026.csv:5008", "currency", "COArea Currency: missing value"),
        ("cji3_2026.csv:7", "posting_date", "Posting Date: not a date in format %d.%m.%Y: '31.02.2026'"),
    ]
    by_doc = {r[14]: r for r in rows}  # document_no
    assert Decimal(str(by_doc["4900000009"][10])) == Decimal("-63.09")  # "63,09-": a credit, exact
    assert Decimal(str(by_doc["4900000008"][10])) == Decimal("56.08")  # the line with an extra cell
    text = by_doc["4900000003"]
    assert text[15] == "Reisekosten Müller – Kölner Büro €" and str(text[4]) == "2026-04-04"


@pytest.mark.parametrize(
    ("cells", "dec", "thou"),
    [
        (["1.234,56", "1.234,56-", "0,00", " 12,5 ", "1\u00a0234,00 -", "-12,5", "7"], ",", "."),
        (["1,234.56", "-3", "12.5-", "1e3"], ".", ","),
        (["1 234,00", "5,5-"], ",", ""),
    ],
)
def test_a_number_column_converts_in_bulk_exactly_as_cell_by_cell(
    cells: list[str], dec: str, thou: str
) -> None:
    column = _Decimals(lambda cell: parse_decimal(cell, dec, thou), dec, thou)
    got = column.column(cells)
    assert got == [parse_decimal(c, dec, thou) for c in cells]
    assert [str(v) for v in got] == [str(parse_decimal(c, dec, thou)) for c in cells]  # same scale too
    assert len(column) == 2  # converted in bulk: nothing went through the remembered cell-by-cell path


@pytest.mark.parametrize(
    ("cells", "error"),
    [
        (["1,00", "12x,50"], "not a number: '12x,50'"),
        (["1,00", "NaN"], "not a finite number: 'NaN'"),
        (["1,00", "1.5"], "not a number with decimal ','"),  # no thousands separator: a point is an error
        (["1,00", "5--"], "not a number: '5--'"),
    ],
)
def test_a_number_column_with_a_bad_cell_is_refused_as_cell_by_cell(cells: list[str], error: str) -> None:
    column = _Decimals(lambda cell: parse_decimal(cell, ",", ""), ",", "")
    with pytest.raises(BadValue, match=error):
        column.column(cells)
    assert column.column(["", "2,50", None]) == [None, Decimal("2.50"), None]


TRICKY = [
    "tab\there",
    "two\nlines",
    "cr\r\nlf",
    "back\\slash",
    'say "hi"',
    "\\N",
    "",
    "semi;colon",
    "Jürgen €",
]


def test_postgresql_writes_through_copy_and_text_survives_it_exactly(engine: Engine) -> None:
    def cost(n: int, description: str) -> CostLine:
        return CostLine(source=SOURCE, source_id=f"D{n}", amount=Decimal("-0.0001"), description=description)

    lines = [Line(n, f"costs.csv:{n}", cost(n, d)) for n, d in enumerate(TRICKY, start=2)]
    again = Line(99, "costs.csv:99", CostLine(source=SOURCE, source_id="D3", description="later"))
    with SyncRun(engine, SOURCE, "cost_lines") as sync:
        staged = StagedLoad(sync.connection, CostLine)
        assert staged.add(lines) == []
        duplicates = staged.add(
            [again, Line(100, "costs.csv:100", CostLine(source=SOURCE, source_id="D100"))]
        )
        merged = staged.merge("costs.csv")

    # the batch with a repeat: its keys by INSERT, which names the repeat; its new line still by COPY
    copied = len(lines) + 1 if engine.dialect.name == "postgresql" else 0
    assert (merged.written, merged.copied) == (len(lines) + 1, copied)
    assert [(d.locator, d.reason) for d in duplicates] == [
        ("costs.csv:99", "duplicate line: same key as line 3")
    ]
    with engine.connect() as c:
        got = dict(c.execute(select(cost_line.c.source_id, cost_line.c.description)).all())
        amount = c.execute(select(cost_line.c.amount).where(cost_line.c.source_id == "D2")).scalar_one()
    assert [got[f"D{n}"] for n in range(2, 2 + len(TRICKY))] == TRICKY and got["D100"] is None
    assert Decimal(str(amount)) == Decimal("-0.0001")


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_a_batch_meeting_a_key_the_table_holds_turns_the_unit_to_the_stage(
    engine: Engine, copy: bool
) -> None:
    """On PostgreSQL new rows go straight into the table, by COPY or by INSERT; the first batch with a
    key the table already holds goes to the stage instead, and the merge still updates that row. SQLite
    always stages."""

    def cost(n: int, amount: int) -> tuple[int, str, CostLine]:
        return n, f"costs.csv:{n}", CostLine(source=SOURCE, source_id=f"D{n}", amount=Decimal(amount))

    with SyncRun(engine, SOURCE, "cost_lines") as sync:
        first = StagedLoad(sync.connection, CostLine, copy=copy)
        assert first.add([cost(1, 10)]) == []
        assert first.merge("a.csv").written == 1
    with SyncRun(engine, SOURCE, "cost_lines") as sync:
        later = StagedLoad(sync.connection, CostLine, copy=copy)
        straight = engine.dialect.name == "postgresql"
        assert later.add([cost(2, 20)]) == [] and later.direct is straight
        assert later.add([cost(1, 11), cost(3, 30)]) == [] and later.direct is False
        merged = later.merge("b.csv")

    assert merged.written == 3
    with engine.connect() as c:
        got = dict(c.execute(select(cost_line.c.source_id, cost_line.c.amount)).tuples().all())
    assert {k: Decimal(str(v)) for k, v in got.items()} == {"D1": 11, "D2": 20, "D3": 30}
