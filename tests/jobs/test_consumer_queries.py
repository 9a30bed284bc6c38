"""The dashboard's and the alert's queries, run with Spark SQL against the local published table.

Each query's result is compared with the same question answered in Python over the
published rows, for every organisation of the sample.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import consumer_views
import pytest
from pyspark.sql import functions as F

from customer_activity_testing.outputs import as_utc
from customer_activity_testing.outputs import published as published_rows

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def table(spark, published_output):
    """The published table under the name the queries read, as the dashboard's default schema gives it."""
    spark.read.format("delta").load(str(published_output / "customer_activity")).createOrReplaceTempView(
        "customer_activity"
    )
    yield [{k: as_utc(v) for k, v in row.items()} for row in published_rows(published_output).to_pylist()]
    spark.catalog.dropTempView("customer_activity")


def run(spark, name: str) -> list[dict[str, object]]:
    return [{k: as_utc(v) for k, v in row.asDict().items()} for row in spark.sql(consumer_views.query(name)).collect()]


def test_every_widget_finds_its_fields_in_its_datasets_result(spark, table):
    dashboard = json.loads(consumer_views.DASHBOARD.read_text())
    columns = {name: spark.sql(consumer_views.query(name)).columns for name in consumer_views.query_names()}
    for item in dashboard["pages"][0]["layout"]:
        for query in item["widget"].get("queries", []):
            fields = [field["name"] for field in query["query"]["fields"]]
            assert set(fields) <= set(columns[query["query"]["datasetName"]]), item["widget"]["name"]


def test_the_overview_sums_the_table(spark, table):
    [overview] = run(spark, "overview")
    assert overview == {
        "customers": len(table),
        "users": sum(r["users_total"] for r in table),
        "data_products": sum(r["dataproducts_total"] for r in table),
        "output_ports": sum(r["dataproducts_outputports_total"] for r in table),
        "assets": sum(r["assets_total"] for r in table),
        "customers_active_30d": sum(1 for r in table if r["users_added_30d"] or r["dataproducts_added_30d"]),
    }
    assert overview["customers_active_30d"] > 0


def percentage(part: int, total: int) -> float | None:
    return None if total == 0 else round(100 * part / total, 1)


def test_ramping_up_lists_the_accounts_that_grew_largest_growth_first(spark, table):
    grew = [r for r in table if r["users_added_30d"] > 0 or r["dataproducts_added_30d"] > 0]
    expected = sorted(grew, key=lambda r: (-(r["users_added_30d"] + r["dataproducts_added_30d"]), r["organization_id"]))
    rows = run(spark, "ramping_up")

    assert [r["organization_id"] for r in rows] == [r["organization_id"] for r in expected]
    for row, source in zip(rows, expected, strict=True):
        assert row["users_added_30d_percentage"] == percentage(source["users_added_30d"], source["users_total"])
        assert row["dataproducts_added_30d_percentage"] == percentage(
            source["dataproducts_added_30d"], source["dataproducts_total"]
        )
    # The sample has both: a first wave (all users new) and growth of an established account.
    assert {100.0} < {r["users_added_30d_percentage"] for r in rows}


def test_gone_quiet_lists_silent_accounts_longest_silence_first(spark, table):
    def quiet(r: dict) -> bool:
        last = r["dataproducts_last_updated_at"]
        return (
            r["users_added_30d"] == 0
            and r["dataproducts_added_30d"] == 0
            and (last is None or last < r["updated_at"] - timedelta(days=90))
        )

    never = datetime.min  # the rows hold naive UTC timestamps
    expected = sorted(
        (r for r in table if quiet(r)), key=lambda r: (r["dataproducts_last_updated_at"] or never, r["organization_id"])
    )
    rows = run(spark, "gone_quiet")

    assert expected, "the sample has quiet accounts"
    assert [r["organization_id"] for r in rows] == [r["organization_id"] for r in expected]
    for row in rows:
        if row["dataproducts_last_updated_at"] is None:
            assert row["days_since_last_dataproduct_update"] is None
        else:
            assert row["days_since_last_dataproduct_update"] > 90


def test_the_platform_mix_counts_customers_per_platform(spark, table):
    rows = run(spark, "platform_mix")
    assert {r["data_platform"]: r["customers"] for r in rows} == Counter(r["data_platform"] or "none" for r in table)
    assert [r["customers"] for r in rows] == sorted((r["customers"] for r in rows), reverse=True)


def band(ports: int, share: float) -> str:
    if ports == 0:
        return "0: no output ports"
    if share == 0:
        return "1: none"
    return "2: under half" if share < 50 else "3: half or more" if share < 100 else "4: all"


def test_contract_coverage_bands_every_customer_once_per_kind(spark, table):
    rows = run(spark, "contract_coverage")
    got = {(r["coverage"], r["band"]): r["customers"] for r in rows}
    expected = Counter(
        (kind, band(r["dataproducts_outputports_total"], r[column]))
        for r in table
        for kind, column in [
            ("data contract", "dataproducts_outputports_with_datacontract_percentage"),
            ("test results", "dataproducts_outputports_with_testresults_percentage"),
        ]
    )
    assert got == expected
    assert len({b for _, b in got}) >= 3, "the sample spreads over several bands"


def test_freshness_says_how_old_the_build_is_and_the_alert_fires_past_the_sla(spark, table):
    [fresh] = run(spark, "freshness")
    newest = max(r["updated_at"] for r in table)
    assert fresh["last_updated_at"] == newest
    age = (datetime.now(UTC).replace(tzinfo=None) - newest).total_seconds() / 3600
    assert abs(fresh["hours_since_update"] - age) < 0.1
    threshold = consumer_views.freshness_hours()
    assert fresh["hours_since_update"] <= threshold

    # The same query over a table last built 26 hours ago crosses the contract's 25 hours.
    spark.table("customer_activity").withColumn(
        "updated_at", F.expr("current_timestamp() - INTERVAL 26 HOURS")
    ).createOrReplaceTempView("stale_customer_activity")
    stale_query = consumer_views.query("freshness").replace("FROM customer_activity", "FROM stale_customer_activity")
    [stale] = spark.sql(stale_query).collect()
    assert 25.9 < stale.hours_since_update < 26.1
    assert stale.hours_since_update > threshold
    spark.catalog.dropTempView("stale_customer_activity")
