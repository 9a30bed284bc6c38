"""The run report's staging counts: observed while the build runs, exact, also for an empty table."""

from __future__ import annotations

import pytest

from customer_activity.jobs.build import StagingCounts
from customer_activity.jobs.report import TableReport
from customer_activity_testing.builders import raw

ROWS = [
    {"data_product_id": "d1", "created_at": "garbage", "updated_at": "2024-01-01", "version": 1},
    {"data_product_id": "d1", "created_at": "2024-01-01", "updated_at": "not a date", "version": 2},
    {"data_product_id": "d2", "created_at": "2024-01-01", "updated_at": "31/12/2024"},
    {"data_product_id": None, "created_at": "2024-01-01"},
    {"data_product_id": None, "created_at": "garbage"},
    {"data_product_id": "d3", "created_at": None, "updated_at": None},
]


def test_the_counts_say_what_staging_dropped_kept_and_could_not_parse(spark):
    counts = StagingCounts("data_product", raw(spark, "data_product", *ROWS).coalesce(2), {"x": 4})
    staged = counts.stage()

    assert staged.count() == 3
    assert counts.report() == TableReport(
        rows=6,
        null_key_rows_dropped=2,
        superseded_versions_removed=1,
        unparseable_timestamp_rows=2,
        rows_after_staging=3,
        rows_missing_columns={"x": 4},
    )


def test_test_results_without_a_key_are_kept_not_dropped(spark):
    rows = [{"test_result_id": None, "data_contract_id": "c1"}, {"test_result_id": "t1", "data_contract_id": "c1"}]
    counts = StagingCounts("test_result", raw(spark, "test_result", *rows))
    assert counts.stage().count() == 2
    assert (counts.report().null_key_rows_dropped, counts.report().rows_after_staging) == (0, 2)


def test_an_empty_table_counts_zero_although_spark_observed_nothing(spark):
    counts = StagingCounts("data_product", raw(spark, "data_product"))
    assert counts.stage().collect() == []
    assert counts.report() == TableReport()


def test_counts_are_not_available_before_the_table_is_staged(spark):
    counts = StagingCounts("asset", raw(spark, "asset"))
    with pytest.raises(RuntimeError, match="nothing was counted"):
        counts.report()
