"""The input side's contract gate: raw rows breaking the provider's row rules are quarantined, and counted."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable

from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.contract import provider_contract_path
from customer_activity.jobs.errors import EXIT_INPUT_ERROR
from customer_activity.jobs.input_contract import (
    QUARANTINE_TABLE,
    QuarantineError,
    RowRule,
    applicable,
    load_provider_contract,
    offending_rows,
    quarantine,
    row_rules,
)
from customer_activity.jobs.local_catalog import STAGING_DIRECTORY
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.transforms.input_ports import INPUT_PORTS
from customer_activity_testing.builders import raw as raw_frame
from customer_activity_testing.builders import rewrite
from customer_activity_testing.outputs import build, fingerprint, run_report


def quarantined(output: Path) -> list[dict[str, object]]:
    return DeltaTable(str(output / STAGING_DIRECTORY / QUARANTINE_TABLE)).to_pyarrow_table().to_pylist()


def offending(source: Path) -> Counter[tuple[str, str, str | None, str, str | None]]:
    """(table, rule, key, dlt id, value) of every raw row breaking a rule: the contract read with plain Python."""
    found: Counter[tuple[str, str, str | None, str, str | None]] = Counter()
    for table in yaml.safe_load(provider_contract_path().read_text())["schema"]:
        rows = pq.read_table(source / table["name"]).to_pylist()
        key = INPUT_PORTS[table["name"]].key
        for prop in table["properties"]:
            for rule in prop.get("quality") or []:
                pattern = (rule.get("arguments") or {}).get("pattern")
                for row in rows:
                    value = row[prop["name"]]
                    missing = rule["metric"] == "nullValues" and value is None
                    if missing or (pattern and value is not None and not re.search(pattern, str(value))):
                        shown = None if value is None else str(value)
                        found[(table["name"], rule["id"], row[key], row["_dlt_id"], shown)] += 1
    return found


def test_the_quarantine_holds_every_raw_row_that_breaks_a_provider_rule(sample_source, published_output):
    expected = offending(sample_source)
    assert {rule for _, rule, *_ in expected} >= {"organization_key_missing", "organization_created_at_unparseable"}
    rows = quarantined(published_output)
    report = run_report(published_output)

    assert Counter((r["source_table"], r["rule"], r["key"], r["dlt_id"], r["value"]) for r in rows) == expected
    assert {row["run_id"] for row in rows} == {report["run_id"]}
    per_rule = Counter((table, rule) for table, rule, *_ in expected.elements())
    assert {table: counts["quarantined"] for table, counts in report["inputs"].items()} == {
        table: {rule: n for (t, rule), n in per_rule.items() if t == table} for table in report["inputs"]
    }
    assert report["quarantine_table"].endswith(f"_staging.{QUARANTINE_TABLE}")


def test_the_quarantine_copies_no_value_of_a_personal_column(spark):
    """A rule on a column the provider classifies as personal quarantines the row, not the value."""
    rules = (
        RowRule("created_by_is_an_address", "organization", "created_by", "@", 0, percent=False),
        RowRule("vanity_url_is_a_path", "organization", "vanity_url", "^/", 0, percent=False),
    )
    raw = {
        "organization": raw_frame(
            spark, "organization", {"organization_id": "o1", "created_by": "x", "vanity_url": "u"}
        )
    }

    rows = offending_rows(
        raw,
        rules,
        {"organization": "organization_id"},
        {"organization": frozenset({"created_by"})},
        "r",
        datetime.now(UTC),
    ).collect()

    assert sorted((row["rule"], row["key"], row["value"], row["dlt_id"]) for row in rows) == [
        ("created_by_is_an_address", "o1", None, "row-0000"),
        ("vanity_url_is_a_path", "o1", "u", "row-0000"),
    ]
    assert load_provider_contract(provider_contract_path()).withheld["organization"] == {"created_by"}


def test_a_table_beyond_a_tolerance_stops_the_run_and_publishes_nothing(source, output_copy, capsys):
    def without_keys(table: pa.Table) -> pa.Table:
        keys = [None if i % 10 == 0 else key for i, key in enumerate(table.column("organization_id").to_pylist())]
        return table.set_column(table.schema.get_field_index("organization_id"), "organization_id", pa.array(keys))

    rewrite(source, "organization", without_keys)
    rows = pq.read_table(source / "organization").num_rows
    missing = pq.read_table(source / "organization").column("organization_id").null_count
    before = fingerprint(output_copy)

    assert build(source, output_copy) == EXIT_INPUT_ERROR

    error = capsys.readouterr().err
    share = 100.0 * missing / rows
    assert (
        f"organization: {missing} of {rows} rows ({share:.1f} %) break organization_key_missing "
        "(organization_id is NULL), tolerated 5 %"
    ) in error
    assert "nothing was published" in error
    assert fingerprint(output_copy) == before
    report = run_report(output_copy)
    assert report["status"] == "failed"
    assert "audit" not in report["durations_seconds"], "stopped before the audit"
    stopped = [row for row in quarantined(output_copy) if row["run_id"] == report["run_id"]]
    assert sum(row["rule"] == "organization_key_missing" for row in stopped) == missing


def rule(**quality: object) -> tuple[RowRule, ...]:
    return row_rules([{"name": "t", "properties": [{"name": "c", "quality": [{"id": "r", **quality}]}]}])


def test_row_rules_read_their_tolerance_as_datacontract_cli_does():
    [share] = rule(metric="nullValues", mustBeLessOrEqualTo=2, unit="percent")
    assert (share.limit, share.percent, share.pattern) == (2.0, True, None)
    assert not share.exceeded(2, 100)
    assert share.exceeded(3, 100)
    [count] = rule(metric="nullValues", mustBeLessThan=3)
    assert not count.exceeded(2, 1000)
    assert count.exceeded(3, 1000)
    [below] = rule(metric="nullValues", mustBeLessThan=5, unit="percent")
    assert not below.exceeded(4, 100)
    assert below.exceeded(5, 100)
    assert below.tolerance() == "fewer than 5 %"
    [nothing] = rule(metric="nullValues")
    assert nothing.exceeded(1, 10**6)
    assert not nothing.exceeded(0, 10)
    [pattern] = rule(metric="invalidValues", arguments={"pattern": "^x$"}, mustBe=0)
    assert pattern.pattern == "^x$"
    assert pattern.condition == "c does not match ^x$"


def test_only_row_level_rules_become_row_rules():
    assert rule(metric="invalidValues", arguments={"validValues": ["a"]}) == ()
    assert rule(metric="rowCount", mustBeGreaterThan=0) == ()
    assert rule(metric="invalidValues", arguments=None) == ()
    assert row_rules([{"name": "t", "properties": None}]) == ()


def test_an_empty_table_breaks_no_tolerance():
    [share] = rule(metric="nullValues", mustBe=0, unit="percent")
    assert not share.exceeded(0, 0)


@pytest.mark.parametrize("table", sorted(INPUT_PORTS))
def test_every_key_the_job_reads_has_a_provider_rule_with_an_id(table):
    rules = row_rules(yaml.safe_load(provider_contract_path().read_text())["schema"])
    assert f"{table}_key_missing" in {r.id for r in rules if r.table == table and r.column == INPUT_PORTS[table].key}


def test_a_quarantine_that_cannot_be_written_stops_the_build_saying_why(spark):
    """Without it the tolerances cannot be judged."""
    provider = load_provider_contract(provider_contract_path())
    raw = {"asset": raw_frame(spark, "asset", {"asset_id": None})}
    nowhere = OutputLocation(TableName("no_such_catalog", "s", "customer_activity"))

    with pytest.raises(QuarantineError, match=r"could not be quarantined in no_such_catalog\.s_staging\."):
        quarantine(spark, nowhere, raw, provider, "run-1", datetime.now(UTC))


def test_rules_on_columns_a_table_lacks_quarantine_nothing(spark):
    raw = {"asset": raw_frame(spark, "asset", {"asset_id": "a"})}
    rules = (RowRule("r", "asset", "no_such_column", None, 0, percent=False),)
    assert applicable(rules, "asset", raw["asset"]) == []
