"""The ``pmo`` command line: what it shows of the quarantine, inspect's finance preview, --version, logging,
literal brackets and tables that wrap. Real finance loads into real warehouses (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from flows import config as cfg
from flows.cli import app
from flows.runner import run
from sandbox.finance import GENERIC_HEADER
from warehouse.schema import quarantine

runner = CliRunner()

CONFIG = """\
[sources.erp]
type = "finance"
instance = "acme-sap-with-a-long-instance-name"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "cji3_*.csv"
profile = "generic_costs"

[sources.ap]
type = "finance"
instance = "acme-ap"
folder = "exports"

[sources.ap.streams.cost_lines]
pattern = "ap_*.csv"
profile = "generic_costs"
"""


def line(doc: str, day: str, amount: str, currency: str = "EUR") -> list[str]:
    return [doc, "1", day, "P-1", "P-1.01", "CC-1", "619000", amount, currency, "", "0001", "Labour"]


def export(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([GENERIC_HEADER, *rows])
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A configuration and its drop folder: three exports, five quarantined lines between them."""
    exports = tmp_path / "exports"
    export(exports / "cji3_01.csv", [line("S1", "2026-01-05", "10.00"), line("S2", "2026-01-32", "5.00")])
    export(
        exports / "ap_01.csv",
        [
            line("A1", "2026-01-05", "10.00"),
            line("A2", "2026-13-01", "1.00"),
            line("A3", "2026-01-07", "1", "EUX"),
        ],
    )
    export(exports / "ap_02.csv", [line("B1", "2026-02-02", "zehn"), line("B2", "2026-02-03", "2.00")])
    export(exports / "ap_[q1].csv", [line("C1", "2026-03-02", "x")])
    (tmp_path / "pmo.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path / "pmo.toml"


@pytest.fixture
def loaded(engine: Engine, site: Path) -> tuple[Path, str]:
    """The site's exports loaded by the real streams; (configuration, warehouse URL)."""
    for stream in cfg.load(site).streams():
        run(engine, stream)
    return site, engine.url.render_as_string(hide_password=False)


def pmo(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def quarantine_rows(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as c:
        return sorted(c.execute(select(quarantine.c.source, quarantine.c.locator)).tuples())


# -- pmo quarantine ----------------------------------------------------------------------------------------


def test_quarantine_lists_each_line_with_its_place_field_and_reason(loaded: tuple[Path, str]) -> None:
    config, url = loaded
    code, out, _ = pmo("quarantine", "--config", str(config), "--database-url", url)
    assert code == 0
    assert "Quarantine (5 lines)" in out
    for where in ("cji3_01.csv:3", "ap_01.csv:3", "ap_01.csv:4", "ap_02.csv:2", "ap_[q1].csv:2"):
        assert where in out
    assert "EUX" in out and "posting_date" in out
    assert "…" not in out  # nothing cut: the long source name and the reasons wrap


def test_quarantine_filters_by_source_file_and_time(loaded: tuple[Path, str]) -> None:
    config, url = loaded
    base = ("quarantine", "--config", str(config), "--database-url", url)
    ap = pmo(*base, "--source", "finance:acme-ap")[1]
    assert "Quarantine (4 lines)" in ap and "cji3_01.csv" not in ap
    assert "Quarantine (5 lines)" in pmo(*base, "--source", "finance")[1]  # a type: every finance source
    assert "Quarantine (0 lines)" in pmo(*base, "--source", "finance:acme")[1]  # not a prefix of a name
    one = pmo(*base, "--file", "ap_02")[1]
    assert "Quarantine (1 lines)" in one and "ap_02.csv:2" in one and "ap_01" not in one
    # "_" is a LIKE wildcard: the prefix is matched as written
    assert "Quarantine (0 lines)" in pmo(*base, "--file", "ap_0_")[1]
    assert "Quarantine (5 lines)" in pmo(*base, "--since", "2000-01-01")[1]
    assert "Quarantine (0 lines)" in pmo(*base, "--since", "2999-01-01T00:00:00")[1]


def test_quarantine_clear_removes_one_files_lines_and_says_how_many(
    loaded: tuple[Path, str], engine: Engine
) -> None:
    config, url = loaded
    base = ("quarantine", "--config", str(config), "--database-url", url)
    code, out, _ = pmo(*base, "--clear", "ap_01.csv")
    assert code == 0 and "2 quarantined line(s) of ap_01.csv removed" in out
    assert quarantine_rows(engine) == [
        ("finance:acme-ap", "ap_02.csv:2"),
        ("finance:acme-ap", "ap_[q1].csv:2"),
        ("finance:acme-sap-with-a-long-instance-name", "cji3_01.csv:3"),
    ]
    # a prefix is not a file: nothing else goes; a filter narrows what --clear removes
    assert "0 quarantined line(s) of ap_0 removed" in pmo(*base, "--clear", "ap_0")[1]
    assert "0 quarantined line(s)" in pmo(*base, "--clear", "ap_02.csv", "--source", "finance:acme-sap")[1]
    assert len(quarantine_rows(engine)) == 3


def test_a_file_named_with_brackets_is_printed_as_it_is(loaded: tuple[Path, str]) -> None:
    """``[q1]`` looks like a rich style tag: printed as markup, it would vanish."""
    config, url = loaded
    out = pmo("quarantine", "--config", str(config), "--database-url", url, "--file", "ap_[q1]")[1]
    assert "ap_[q1].csv:2" in out
    cleared = pmo("quarantine", "--config", str(config), "--database-url", url, "--clear", "ap_[q1].csv")[1]
    assert "1 quarantined line(s) of ap_[q1].csv removed" in cleared


# -- pmo runs: tables wrap rather than cut ------------------------------------------------------------------


def test_runs_shows_whole_source_names_and_errors(loaded: tuple[Path, str], engine: Engine) -> None:
    config, url = loaded
    (stream,) = cfg.load(config).streams("ap")
    for f in (config.parent / "exports").iterdir():
        f.unlink()
    (config.parent / "exports").rmdir()
    with pytest.raises(FileNotFoundError):
        run(engine, stream)  # the run is on record, failed, with a long error ending in "does not exist"
    code, out, _ = pmo("runs", "--config", str(config.parent / "none.toml"), "--database-url", url)
    assert code == 0 and "…" not in out
    folder = config.parent / "exports"
    error = f"FileNotFoundError: finance:acme-ap/cost_lines: drop folder {folder} does not exist"
    assert "".join(error.split()) in column(out, "error")
    assert "finance:acme-sap-with-a-long-instance-name" in column(out, "source")


def column(table: str, name: str) -> str:
    """A printed table's column, its cells' lines joined, without spaces (a wrapped cell spans lines)."""
    lines = [x.split("│") for x in table.splitlines() if x.startswith("│")]
    header = next(x.split("┃") for x in table.splitlines() if x.startswith("┃"))
    i = [h.strip() for h in header].index(name)
    return "".join("".join(cells[i].split()) for cells in lines)


# -- pmo inspect: a finance export through its profile ------------------------------------------------------


def test_inspect_previews_a_finance_export_through_the_named_profile(site: Path) -> None:
    export_file = site.parent / "exports" / "ap_01.csv"
    code, out, err = pmo("inspect", str(export_file), "--profile", "generic_costs", "--limit", "1")
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["entity"] for r in rows] == ["cost_line", "rejected", "rejected"]
    assert (rows[0]["document_no"], rows[0]["amount"], rows[0]["posting_date"]) == (
        "A1",
        "10.00",
        "2026-01-05",
    )
    assert [(r["locator"], r["field"]) for r in rows[1:]] == [
        ("ap_01.csv:3", "posting_date"),
        ("ap_01.csv:4", "currency"),
    ]
    assert "through profile generic_costs: 1 records (showing 1), 2 rejected" in err


def test_inspect_finds_the_profile_of_the_configured_stream_whose_pattern_matches(site: Path) -> None:
    code, out, _ = pmo("inspect", str(site.parent / "exports" / "ap_02.csv"), "--config", str(site))
    assert code == 0
    assert [json.loads(x)["entity"] for x in out.splitlines()] == ["cost_line", "rejected"]


def test_inspect_of_a_csv_without_a_profile_says_what_it_needs(site: Path, tmp_path: Path) -> None:
    stray = export(tmp_path / "elsewhere" / "x.csv", [line("X", "2026-01-05", "1.00")])
    code, out, err = pmo("inspect", str(stray), "--config", str(site))
    assert code == 2 and out == ""
    assert "not a project file (.xml, .mpp)" in err and "--profile" in err and "sap_cji3" in err
    assert "XML" not in err
    assert "no finance stream of" in err
    code, _, err = pmo("inspect", str(stray), "--profile", "no_such_profile")
    assert code == 2 and "profile 'no_such_profile' not found" in err


# -- --version, -v, --log-file, help ----------------------------------------------------------------------


def test_version() -> None:
    code, out, _ = pmo("--version")
    assert code == 0 and out.strip() == f"pmo-sync {version('pmo-sync')}"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The CLI configures the root logger; put it back as it was after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:], root.level = handlers, level


def test_verbose_logs_each_stream_and_the_log_file_is_redacted(
    site: Path, tmp_path: Path, root_logging: None
) -> None:
    log_file = tmp_path / "pmo.log"
    url = f"sqlite:///{tmp_path / 'w.db'}"
    quiet = runner.invoke(app, ["sync", "--config", str(site), "--database-url", url, "--source", "erp"])
    assert quiet.exit_code == 0 and "INFO" not in quiet.stderr
    result = runner.invoke(
        app, ["-v", "--log-file", str(log_file), "sync", "--config", str(site), "--database-url", url]
    )
    assert result.exit_code == 0
    assert "INFO pmo: finance:acme-ap/cost_lines:" in result.stderr
    for h in logging.getLogger().handlers[:]:  # the runner's stderr is closed now: only the file is left
        if type(h) is logging.StreamHandler:
            logging.getLogger().removeHandler(h)
    logging.getLogger("connectors.jira.client").warning("retrying postgresql://bi:hunter2@db/pmo")
    text = log_file.read_text(encoding="utf-8")
    assert "INFO pmo: finance:acme-ap/cost_lines: {" in text and "'rows_quarantined': 4" in text
    assert "postgresql://bi:***@db/pmo" in text and "hunter2" not in text


def test_a_log_file_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, out, err = pmo("--log-file", str(tmp_path / "no" / "such" / "dir" / "pmo.log"), "runs")
    assert code == 2 and out == ""
    assert err == f"✗ --log-file {tmp_path / 'no' / 'such' / 'dir' / 'pmo.log'}: No such file or directory\n"


def test_help_prints_brackets_literally() -> None:
    code, out, _ = pmo("sync", "--help")
    assert code == 0
    assert "[warehouse] url" in " ".join(out.split())


def test_a_message_with_brackets_is_printed_literally(site: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    code, out, _ = pmo("mappings", "export", "--config", str(site), "--database-url", url)
    assert code == 2 and '[reconcile] decisions = "…"' in out


def test_help_does_not_import_prefect() -> None:
    """Prefect takes seconds to import: only the commands that run a flow may pay for it."""
    probe = "import sys; from flows.cli import app; print('prefect' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
