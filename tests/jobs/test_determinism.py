"""Reruns give the same answer, whatever the input's row order, file layout or partitioning."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from customer_activity.jobs import inputs, local_catalog
from customer_activity.jobs.build import stage_with_counts
from customer_activity.jobs.contract import load_contract
from customer_activity.transforms import output_ports
from customer_activity_testing.outputs import AS_OF, as_utc, build, published

pytestmark = pytest.mark.e2e


def rows(output: Path) -> list[dict[str, object]]:
    """The published rows without `updated_at`, the one column that differs per run."""
    table = published(output).drop(["updated_at"])
    return sorted(
        ({k: as_utc(v) for k, v in row.items()} for row in table.to_pylist()), key=lambda r: r["organization_id"]
    )


def test_shuffled_rows_and_another_file_layout_give_the_same_rows(
    sample_source, published_output, output_copy, tmp_path
):
    """Every table's rows shuffled and split over three files of unequal size: a rerun on the same
    rows in another order and layout publishes what the first build published."""
    shuffled = tmp_path / "raw"
    rng = random.Random(2024)
    for table_dir in sample_source.iterdir():
        table = pq.read_table(table_dir)
        order = list(range(table.num_rows))
        rng.shuffle(order)
        table = table.take(order)
        (shuffled / table_dir.name).mkdir(parents=True)
        cuts = [0, table.num_rows // 5, table.num_rows // 2, table.num_rows]
        for number, (start, end) in enumerate(itertools.pairwise(cuts)):
            pq.write_table(
                table.slice(start, end - start), shuffled / table_dir.name / f"part-{number}.parquet", row_group_size=17
            )

    assert build(shuffled, output_copy) == 0
    assert rows(output_copy) == rows(published_output)


@pytest.mark.parametrize("partitions", ["1", "13"])
def test_the_number_of_shuffle_partitions_does_not_change_the_rows(spark, sample_source, published_output, partitions):
    contract = load_contract()
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", partitions)
    try:
        source = local_catalog.mounted_source(spark, sample_source)
        staged, _ = stage_with_counts(inputs.read_raw_tables(spark, source))
        candidate = output_ports.customer_activity(staged, AS_OF, datetime.now(UTC), contract.spark_schema)
        # Through Arrow: timestamps keep their zone instead of becoming local wall time.
        computed = [
            {k: as_utc(v) for k, v in row.items() if k != "updated_at"}
            for row in candidate.orderBy("organization_id").toArrow().to_pylist()
        ]
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    assert computed == rows(published_output)
