"""The configuration models as a PMO engineer meets them: each problem at its line, whatever the TOML form."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows import config as cfg

FINANCE = """\
[sources.erp]
type = "finance"
instance = "acme"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "cji3_*.csv"
profile = "sap_cji3"
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    """The problems ``load`` reports for ``text``, without the file's path."""
    path = tmp_path / "pmo.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path)
    assert all(p.startswith(f"{path}:") for p in err.value.problems), err.value.problems
    return [p.removeprefix(f"{path}:") for p in err.value.problems]


def test_problems_in_dotted_keys_inline_tables_and_after_long_strings_name_their_own_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "exports").mkdir()
    text = '''\
[sources]
erp.type = "finance"
erp.folder = "exports"
erp.streams.costs = { pattern = 7, profile = "generic_costs" }
"the plans" = { type = "projectfiles", folder = "plans" }

[reconcile]
decisions = """
accept = "not this line"
"""
accept = "high"
'''
    assert _problems(tmp_path, text) == [
        "4: sources.erp.streams.costs.pattern: input should be a valid string, got 7",
        f"5: sources.the plans.folder: folder {tmp_path / 'plans'} does not exist",
        "7: reconcile: need 0 <= review (80.0) <= accept (0.0) <= 100",  # flows.reconcile's own check
        "11: reconcile.accept: not a number: 'high'",
    ]


def test_a_toml_syntax_error_and_an_unknown_table_are_named_at_their_line(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    assert _problems(tmp_path, FINANCE + "\n[warehous]\nurl = 'sqlite:///w.db'\n") == [
        "10: unknown keys ['warehous'] (did you mean 'warehouse'?)"
    ]
    (problem,) = _problems(tmp_path, FINANCE.replace('pattern = "cji3_*.csv"', "pattern = cji3"))
    assert problem.startswith("7: not valid TOML: ")


def test_the_warehouse_url_is_text_or_a_secret_reference(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    path = tmp_path / "pmo.toml"
    path.write_text('[warehouse]\nurl = "sqlite:///w.db"\n\n' + FINANCE, encoding="utf-8")
    c = cfg.load(path)
    assert (c.warehouse_url, c.warehouse_ref) == ("sqlite:///w.db", None)
    path.write_text('[warehouse]\nurl = { env = "PMO_WH_URL" }\n\n' + FINANCE, encoding="utf-8")
    c = cfg.load(path)
    assert (c.warehouse_url, c.warehouse_ref) == (None, {"env": "PMO_WH_URL"})
    both = '[warehouse]\nurl = { env = "A", secret = "b" }\n\n' + FINANCE
    assert _problems(tmp_path, both) == [
        '2: warehouse.url: give one of { env = "NAME" } or { secret = "block-name" }'
    ]
    assert _problems(tmp_path, "[warehouse]\nurl = 5\n\n" + FINANCE) == [
        '2: warehouse.url: a URL, { env = "NAME" } or { secret = "block-name" }'
    ]


def test_notify_names_a_block_and_a_whole_number_of_hours(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    path = tmp_path / "pmo.toml"
    path.write_text(FINANCE + '\n[notify]\nblock = "pmo-teams"\nstale_after_hours = 12\n', encoding="utf-8")
    assert cfg.load(path).raw["notify"] == {"block": "pmo-teams", "stale_after_hours": 12}
    bad = FINANCE + '\n[notify]\nblock = "pmo-teams"\nstale_after_hours = "36"\nstale_after = 1\n'
    assert _problems(tmp_path, bad) == [
        "12: notify.stale_after_hours: input should be a valid integer, got str",
        "13: notify: unknown keys ['stale_after'] (did you mean 'stale_after_hours'?)",
    ]


def test_a_second_stream_of_one_record_type_and_a_missing_ca_bundle_are_named(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    second = FINANCE + '\n[sources.erp.streams.more]\npattern = "ap_*.csv"\nprofile = "generic_costs"\n'
    assert _problems(tmp_path, second) == [
        "10: sources.erp.streams.more: a second cost_line stream in one source would replace the periods"
        " of 'cost_lines'; give it its own source"
    ]
    jira = FINANCE + (
        '\n[sources.acme]\ntype = "jira"\nurl = "https://acme.atlassian.net"\nemail = "p@acme.example"\n'
        'token = { env = "JIRA_TOKEN" }\nverify = "certs/ca.pem"\n'
    )
    assert _problems(tmp_path, jira) == [
        f"15: sources.acme.verify: file {tmp_path / 'certs/ca.pem'} does not exist"
    ]


def test_a_folder_gone_after_loading_is_named_when_streams_are_built(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    path = tmp_path / "pmo.toml"
    path.write_text(FINANCE, encoding="utf-8")
    c = cfg.load(path)
    (stream,) = c.streams("erp")
    assert (stream.source, stream.name, stream.folder, stream.pattern, stream.profile.name) == (
        "finance:acme", "cost_lines", tmp_path / "exports", "cji3_*.csv", "sap_cji3",
    )  # fmt: skip
    shutil.rmtree(tmp_path / "exports")
    with pytest.raises(cfg.ConfigError) as err:
        c.streams("erp")
    assert err.value.problems == [
        f"{path}:4: sources.erp.folder: folder {tmp_path / 'exports'} does not exist"
    ]
