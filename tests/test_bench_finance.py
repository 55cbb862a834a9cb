"""``python -m bench finance`` measures what BENCHMARKS.md reports: every generated line loads, and the
floor and the table's own write are measured on the same file."""

from __future__ import annotations

from bench.finance import main


def test_bench_finance_loads_every_line_and_reports_its_floor_and_the_tables_own_write() -> None:
    result = main(["--lines", "3000"])
    assert result["lines"] == 3000
    assert result["rows_written"] == 3000
    assert result["rows_quarantined"] == 0
    assert result["database"] == "sqlite"
    # rounded to 0.01 s, a 3,000-line file's figures may show 0.0: only the ratios are sure to be given
    assert {"floor_s", "table_write_s"} <= result.keys()
    assert result["floor_ratio"] > 0 and result["table_write_ratio"] > 0
