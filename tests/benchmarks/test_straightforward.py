"""The benchmark's straightforward implementation computes the same rows as the project."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
import straightforward

from customer_activity.jobs import inputs, local_catalog
from customer_activity_testing.outputs import AS_OF, as_utc
from customer_activity_testing.outputs import published as published_rows

pytestmark = pytest.mark.e2e


def test_the_straightforward_implementation_agrees_with_the_build(spark, sample_source, published_output):
    raw = inputs.read_raw_tables(spark, local_catalog.mounted_source(spark, sample_source))
    result = straightforward.customer_activity(spark, raw, AS_OF, datetime.now(UTC))

    computed = [
        {k: as_utc(v) for k, v in row.items() if k != "updated_at"}
        for row in result.orderBy("organization_id").toArrow().to_pylist()
    ]
    published = published_rows(published_output).drop(["updated_at"])
    expected = sorted(
        ({k: as_utc(v) for k, v in r.items()} for r in published.to_pylist()), key=lambda r: r["organization_id"]
    )
    assert result.columns == pq.read_schema(next((published_output / "customer_activity").glob("*.parquet"))).names
    assert computed == expected


def test_as_a_job_of_its_own_it_writes_the_same_rows_as_parquet(spark, sample_source, published_output, tmp_path):
    assert straightforward.main([str(sample_source), str(tmp_path / "port"), AS_OF.isoformat()]) == 0

    ported = pq.read_table(tmp_path / "port").drop(["updated_at"]).to_pylist()
    expected = published_rows(published_output).drop(["updated_at"]).to_pylist()
    by_key = {row["organization_id"]: {k: as_utc(v) for k, v in row.items()} for row in expected}
    assert {row["organization_id"]: {k: as_utc(v) for k, v in row.items()} for row in ported} == by_key
