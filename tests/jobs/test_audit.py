"""The pre-publish audit: every contract check, each shown failing on a tiny candidate."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from pyspark.sql import types as T

from customer_activity.jobs.audit import audit, plain_metrics
from customer_activity.jobs.contract import QualityRule, load_contract, row_condition

NOW = datetime(2026, 11, 20, 6, 0)


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def good_row(organization_id: str | None, **changes: object) -> dict[str, object]:
    row = {
        "organization_id": organization_id,
        "organization_vanity_url": "acme",
        "organization_created_by": "u1",
        "organization_created_at": NOW,
        "users_total": 3,
        "users_added_30d": 1,
        "users_last_signed_up_at": NOW,
        "dataproducts_total": 2,
        "dataproducts_added_30d": 0,
        "dataproducts_outputports_total": 4,
        "dataproducts_outputports_with_datacontract_percentage": 50.0,
        "dataproducts_outputports_with_testresults_percentage": 25.0,
        "dataproducts_last_updated_at": None,
        "assets_total": 0,
        "data_platform": None,
        "updated_at": NOW,
    }
    return row | changes


def candidate(spark, contract, *rows: dict[str, object]):
    # Nullable fields, so that a candidate can hold the NULLs the audit must catch.
    schema = T.StructType([T.StructField(f.name, f.dataType) for f in contract.spark_schema.fields])
    return spark.createDataFrame([tuple(row[f.name] for f in schema.fields) for row in rows], schema)


def failed(spark, contract, *rows: dict[str, object]) -> list[str]:
    return [
        c.name for c in audit(candidate(spark, contract, *rows), contract, view="audit_test").checks if not c.passed
    ]


def test_a_good_candidate_passes_every_check(spark, contract):
    result = audit(candidate(spark, contract, good_row("o1"), good_row("o2")), contract, view="audit_test")
    assert result.failures == []
    assert result.rows == 2
    assert len(result.checks) > 10


def test_null_in_a_required_column_fails(spark, contract):
    assert "organization_id is not NULL" in failed(spark, contract, good_row("o1"), good_row(None))
    assert failed(spark, contract, good_row("o1", users_total=None)) == ["users_total is not NULL"]


def test_a_duplicate_organization_fails(spark, contract):
    assert "organization_id is unique" in failed(spark, contract, good_row("o1"), good_row("o1"))


def test_an_empty_candidate_fails_the_row_count_rule(spark, contract):
    assert failed(spark, contract) == ["The table is never published empty."]


def test_more_recent_than_total_users_fails(spark, contract):
    assert failed(spark, contract, good_row("o1", users_added_30d=4)) == ["users_added_30d never exceeds users_total."]


@pytest.mark.parametrize("value", [-0.1, 100.5])
def test_a_percentage_outside_0_to_100_fails(spark, contract, value):
    assert (
        len(failed(spark, contract, good_row("o1", dataproducts_outputports_with_datacontract_percentage=value))) == 1
    )


def test_a_negative_count_fails(spark, contract):
    assert failed(spark, contract, good_row("o1", assets_total=-1)) == ["assets_total is not negative."]


def test_a_failure_says_what_was_measured(spark, contract):
    [failure] = audit(candidate(spark, contract, good_row("o1"), good_row("o1")), contract, view="audit_test").failures[
        :1
    ]
    assert failure == "organization_id is unique: 1 duplicates"


def test_a_candidate_with_the_wrong_schema_stops_before_any_data_check(spark, contract):
    frame = candidate(spark, contract, good_row("o1")).drop("data_platform")
    result = audit(frame, contract, view="audit_test")
    assert [c.passed for c in result.checks] == [False]
    assert result.rows is None


def test_a_rule_that_is_not_a_plain_row_condition_runs_as_its_own_query(spark, contract):
    query = "SELECT COUNT(*) FROM ${model} WHERE length(organization_id) = 0"
    rule = QualityRule(
        "organization_id_not_empty",
        "organization_id is never empty",
        "organization_id",
        "sql",
        query,
        "mustBe",
        0.0,
        row_condition(query),
    )
    assert rule.row_condition is None
    extended = replace(contract, rules=(*contract.rules, rule))
    result = audit(candidate(spark, contract, good_row("o1"), good_row("")), extended, view="audit_test")
    assert result.failures == ["organization_id is never empty: measured 1, expected mustBe 0.0"]


def test_values_observed_while_the_candidate_was_written_stand_in_for_the_plain_aggregation(spark, contract):
    frame = candidate(spark, contract, good_row("o1"), good_row("o1"))
    plain = frame.agg(*plain_metrics(contract)).first().asDict()
    assert (
        audit(frame, contract, view="audit_test", observed=plain).failures
        == audit(frame, contract, view="audit_test").failures
    )
    # What was observed is what the audit judges; the distinct counts it still takes itself.
    result = audit(frame, contract, view="audit_test", observed=plain | {"nulls:users_total": 1, "rows": 0})
    assert result.rows == 0
    assert result.failures == [
        "users_total is not NULL: 1 NULL values",
        "organization_id is unique: 1 duplicates",
        "The table is never published empty.: measured 0, expected mustBeGreaterThan 0.0",
        "One row per organisation.: measured 1, expected mustBe 0.0",
    ]
