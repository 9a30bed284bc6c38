"""The change gate: a contract-valid candidate far from the published table is not published."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from customer_activity.jobs.change import Change, ChangeLimits, Figure
from customer_activity.jobs.cli import main
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION, EXIT_OK, EXIT_USAGE, ConfigurationError
from customer_activity_testing.builders import rewrite
from customer_activity_testing.outputs import build, delta_table, fingerprint, published, run_report

REASON = "checked with the source team: half the organisations were deleted on purpose"


def test_limits_are_percentages_by_name_and_the_others_keep_their_defaults():
    assert ChangeLimits.parse("") == ChangeLimits()
    assert ChangeLimits.parse(" rows=30, totals = 40% ") == ChangeLimits(rows=30.0, totals=40.0)
    assert ChangeLimits.parse("organizations_gone=0").organizations_gone == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users=5", "unknown change limit 'users' in 'users=5': the limits are organizations_gone, rows, totals"),
        ("rows=many", "the change limit rows needs a percentage, got 'many'"),
        ("rows=-1", "the change limit rows must be a percentage of 0 or more"),
        ("rows=nan", "the change limit rows must be a percentage of 0 or more"),
    ],
)
def test_a_wrong_limit_is_named(text, message):
    with pytest.raises(ConfigurationError, match=message):
        ChangeLimits.parse(text)


def test_the_command_line_refuses_a_wrong_limit_and_an_empty_reason(capsys):
    arguments = ["build", "--source-dir", "raw", "--output-dir", "out"]
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--change-limits", "rows=lots"])
    assert exited.value.code == EXIT_USAGE
    assert "the change limit rows needs a percentage, got 'lots'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--accept-change", " "])
    assert exited.value.code == EXIT_USAGE
    assert "argument --accept-change: needs a reason" in capsys.readouterr().err


def test_a_figure_is_exceeded_either_way_and_never_without_a_published_figure():
    assert Figure("rows", 100, 79, -21.0, 20.0).exceeded
    assert Figure("rows", 100, 121, 21.0, 20.0).exceeded
    assert not Figure("rows", 100, 120, 20.0, 20.0).exceeded
    assert not Figure("rows", 0, 50, None, 20.0).exceeded
    assert Change(compared_with=None).exceeded == []
    assert Change(compared_with=None).summary() == "change: nothing published yet to compare with"


def half_of_the_organizations(table: pa.Table) -> pa.Table:
    """Every version of every other organisation: what a partial extraction delivers."""
    keys = sorted(set(table.column("organization_id").drop_null().to_pylist()))
    return table.filter(pc.is_in(table.column("organization_id"), pa.array(keys[::2])))


@pytest.mark.e2e
def test_a_partial_load_is_refused_and_published_only_with_an_override(source, output_copy, capsys):
    before, version = fingerprint(output_copy), delta_table(output_copy).version()
    organizations = len(published(output_copy))
    rewrite(source, "organization", half_of_the_organizations)

    assert build(source, output_copy) == EXIT_CONTRACT_VIOLATION

    error = capsys.readouterr().err
    gone = organizations - (organizations + 1) // 2
    assert f"differs from the published table (version {version}) more than the change limits allow" in error
    assert f"organisations gone: {gone} of {organizations} (+{100 * gone / organizations:.1f} %), limit 5 %" in error
    assert f"rows: {organizations} -> {organizations - gone} (" in error
    assert "  - users_total: " in error
    assert "limit ±25 %" in error
    assert "--accept-change" in error
    assert "Traceback" not in error
    # An independent reader (delta-rs) sees the same version, the same rows.
    assert fingerprint(output_copy) == before
    refused = run_report(output_copy)
    assert refused["status"] == "refused"
    assert refused["published_version"] is None
    assert refused["change"]["compared_with"] == version
    assert {f["name"] for f in refused["change"]["figures"]} >= {"organizations_gone", "rows", "users_total"}

    assert build(source, output_copy, "--accept-change", REASON) == EXIT_OK

    assert len(published(output_copy)) == organizations - gone
    report = run_report(output_copy)
    assert report["status"] == "succeeded"
    assert report["change"]["accepted"] == REASON
    assert f"limits overridden: {REASON}" in capsys.readouterr().out
