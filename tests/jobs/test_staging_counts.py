"""The run report's staging counts: exact from footers where they are, observed where not, equal either way."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from customer_activity.jobs import raw_files
from customer_activity.jobs.build import StagingCounts
from customer_activity.jobs.inputs import RawTable
from customer_activity.jobs.report import TableReport
from customer_activity_testing.builders import raw


def test_footers_count_rows_and_null_keys_exactly_and_admit_when_they_cannot(tmp_path):
    keys = pa.table({"id": ["a", None, "b", None, None]})
    pq.write_table(keys, tmp_path / "with-statistics.parquet", row_group_size=2)
    pq.write_table(keys, tmp_path / "without-statistics.parquet", write_statistics=False)
    pq.write_table(pa.table({"other": [1, 2]}), tmp_path / "without-the-key.parquet")

    def inspected(*names: str) -> raw_files.RawDataset:
        return raw_files.inspect("t", tmp_path, [tmp_path / n for n in names], ("id",), "id")

    with_statistics = inspected("with-statistics.parquet")
    assert (with_statistics.rows, with_statistics.key_nulls) == (5, 3)
    # A file without the key column holds only NULL keys.
    assert inspected("with-statistics.parquet", "without-the-key.parquet").key_nulls == 5
    # One file without statistics, and the footers no longer know: the build must count.
    assert inspected("with-statistics.parquet", "without-statistics.parquet").key_nulls is None
    assert inspected("without-statistics.parquet").rows == 5


ROWS = [
    {"data_product_id": "d1", "created_at": "garbage", "updated_at": "2024-01-01", "version": 1},
    {"data_product_id": "d1", "created_at": "2024-01-01", "updated_at": "not a date", "version": 2},
    {"data_product_id": "d2", "created_at": "2024-01-01", "updated_at": "31/12/2024"},
    {"data_product_id": None, "created_at": "2024-01-01"},
    {"data_product_id": None, "created_at": "garbage"},
    {"data_product_id": "d3", "created_at": None, "updated_at": None},
]
EXPECTED = TableReport(
    rows=6,
    null_key_rows_dropped=2,
    superseded_versions_removed=1,
    unparseable_timestamp_rows=2,
    rows_after_staging=3,
    rows_missing_columns={"x": 4},
)


@pytest.mark.parametrize("footers", [True, False], ids=["from-footers", "observed"])
def test_the_counts_are_the_same_from_footers_or_observed(spark, tmp_path, footers):
    raw(spark, "data_product", *ROWS).coalesce(2).write.parquet(str(tmp_path / "data_product"))
    files = sorted((tmp_path / "data_product").glob("*.parquet"))
    dataset = raw_files.inspect(
        "data_product", tmp_path, files, tuple(raw(spark, "data_product").columns), "data_product_id"
    )
    assert (dataset.rows, dataset.key_nulls) == (6, 2), "the footers Spark wrote count every row and NULL key"
    table = RawTable(
        dataset.read(spark),
        {"x": 4},
        rows=dataset.rows if footers else None,
        null_keys=dataset.key_nulls if footers else None,
    )
    counts = StagingCounts("data_product", table)
    staged = counts.stage()

    assert staged.count() == 3
    assert counts.report() == EXPECTED


def test_an_empty_table_counts_zero_although_spark_observed_nothing(spark):
    counts = StagingCounts("data_product", RawTable(raw(spark, "data_product")))
    assert counts.stage().collect() == []
    assert counts.report() == TableReport()


def test_counts_are_not_available_before_the_table_is_staged(spark):
    counts = StagingCounts("asset", RawTable(raw(spark, "asset")))
    with pytest.raises(RuntimeError, match="nothing was counted"):
        counts.report()
