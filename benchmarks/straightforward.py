"""The straightforward implementation, for comparison only: the dbt models ported as they are.

One CTE per dbt model, in Spark SQL over the raw tables registered as views
`raw_<table>`: each staging model keeps the latest version with a `row_number()`
window, each intermediate model aggregates one thing, and the final select joins
them. This is what a data engineer would write first; the benchmark measures the
project's build against it. The staging CTEs are generated from one template, the
way a dbt macro would generate them, and keep every column the specification lists.

Its window orders by `version`, `_dlt_load_id` and `_dlt_id` only, as the dbt models
did: `_dlt_id` is unique per row, so on any input dlt writes it keeps the same rows
as the project. (The project also orders by the kept values after these three, so
that even rows copied with the same `_dlt_id` cannot make it depend on row order.)
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from customer_activity.jobs import inputs, local_catalog, session

# table: (key, id columns, string columns, timestamp columns, versioned)
SOURCES = {
    "organization": ("organization_id", (), ("vanity_url", "created_by"), ("created_at",), True),
    "organization_member": ("organization_member_id", ("organization_id", "user_id"), ("role",), ("created_at",), True),
    "data_product": (
        "data_product_id",
        ("organization_id",),
        ("name", "status", "specification_type"),
        ("created_at", "updated_at"),
        True,
    ),
    "asset": ("asset_id", ("organization_id",), ("name", "type"), ("created_at",), True),
    "output_port": ("output_port_id", ("data_product_id", "data_contract_id"), ("name", "type"), ("created_at",), True),
    "data_contract": ("data_contract_id", ("organization_id",), ("status",), ("created_at",), True),
    "test_result": ("test_result_id", ("data_contract_id",), ("result",), ("created_at",), False),
}
MODELS = {
    "organization": "stg_organizations",
    "organization_member": "stg_organization_members",
    "data_product": "stg_data_products",
    "asset": "stg_assets",
    "output_port": "stg_output_ports",
    "data_contract": "stg_data_contracts",
    "test_result": "stg_test_results",
}


def staging_model(table: str) -> str:
    """The dbt staging model of one raw table: typed columns, latest version per key."""
    key, ids, strings, timestamps, versioned = SOURCES[table]
    typed = [f"CAST({c} AS STRING) AS {c}" for c in (key, *ids, *strings)]
    typed += [f"try_cast({c} AS TIMESTAMP) AS {c}" for c in timestamps]
    columns = [key, *ids, *strings, *timestamps]
    if not versioned:
        return f"{MODELS[table]} AS (SELECT {', '.join(typed)} FROM raw_{table})"
    load_id = "try_cast(_dlt_load_id AS DECIMAL(38,10))"
    return f"""{MODELS[table]} AS (
  SELECT {", ".join(columns)} FROM (
    SELECT {", ".join(typed)},
      ROW_NUMBER() OVER (
        PARTITION BY {key}
        ORDER BY version DESC NULLS LAST, {load_id} DESC NULLS LAST, _dlt_id DESC NULLS LAST
      ) AS row_number
    FROM raw_{table}
    WHERE {key} IS NOT NULL
  ) WHERE row_number = 1
)"""


def query(as_of: date, updated_at: datetime) -> str:
    midnight = datetime.combine(as_of, time.min, tzinfo=UTC)
    start = (midnight - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    end = (midnight + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    recent = f"created_at >= TIMESTAMP '{start}' AND created_at < TIMESTAMP '{end}'"
    staging = ",\n".join(staging_model(table) for table in SOURCES)
    return f"""
WITH
{staging},
int_organization_users AS (
  SELECT organization_id,
    COUNT(DISTINCT user_id) AS users_total,
    COUNT(DISTINCT CASE WHEN {recent} THEN user_id END) AS users_added_30d,
    MAX(created_at) AS users_last_signed_up_at
  FROM stg_organization_members GROUP BY organization_id
),
int_organization_data_products AS (
  SELECT organization_id,
    COUNT(*) AS dataproducts_total,
    COUNT_IF({recent}) AS dataproducts_added_30d,
    MAX(updated_at) AS dataproducts_last_updated_at
  FROM stg_data_products GROUP BY organization_id
),
active_data_contracts AS (
  SELECT data_contract_id FROM stg_data_contracts WHERE status = 'active'
),
tested_data_contracts AS (
  SELECT DISTINCT data_contract_id FROM stg_test_results WHERE data_contract_id IS NOT NULL
),
int_output_ports_enriched AS (
  SELECT p.output_port_id, p.data_product_id, p.type AS platform_type, d.organization_id,
    a.data_contract_id IS NOT NULL AS has_active_data_contract,
    t.data_contract_id IS NOT NULL AS has_test_results
  FROM stg_output_ports p
  JOIN stg_data_products d ON p.data_product_id = d.data_product_id
  LEFT JOIN active_data_contracts a ON p.data_contract_id = a.data_contract_id
  LEFT JOIN tested_data_contracts t ON p.data_contract_id = t.data_contract_id
),
int_organization_output_ports AS (
  SELECT organization_id,
    COUNT(*) AS dataproducts_outputports_total,
    100D * COUNT_IF(has_active_data_contract) / COUNT(*) AS dataproducts_outputports_with_datacontract_percentage,
    100D * COUNT_IF(has_test_results) / COUNT(*) AS dataproducts_outputports_with_testresults_percentage
  FROM int_output_ports_enriched GROUP BY organization_id
),
platform_votes AS (
  SELECT organization_id, platform_type, COUNT(DISTINCT data_product_id) AS data_products
  FROM int_output_ports_enriched WHERE platform_type IS NOT NULL
  GROUP BY organization_id, platform_type
),
int_organization_data_platform AS (
  SELECT organization_id, platform_type AS data_platform FROM (
    SELECT *, ROW_NUMBER() OVER (
      PARTITION BY organization_id ORDER BY data_products DESC, platform_type ASC
    ) AS row_number
    FROM platform_votes
  ) WHERE row_number = 1
),
int_organization_assets AS (
  SELECT organization_id, COUNT(*) AS assets_total FROM stg_assets GROUP BY organization_id
)
SELECT
  o.organization_id,
  o.vanity_url AS organization_vanity_url,
  o.created_by AS organization_created_by,
  o.created_at AS organization_created_at,
  COALESCE(u.users_total, 0) AS users_total,
  COALESCE(u.users_added_30d, 0) AS users_added_30d,
  u.users_last_signed_up_at,
  COALESCE(d.dataproducts_total, 0) AS dataproducts_total,
  COALESCE(d.dataproducts_added_30d, 0) AS dataproducts_added_30d,
  COALESCE(p.dataproducts_outputports_total, 0) AS dataproducts_outputports_total,
  COALESCE(p.dataproducts_outputports_with_datacontract_percentage, 0D)
    AS dataproducts_outputports_with_datacontract_percentage,
  COALESCE(p.dataproducts_outputports_with_testresults_percentage, 0D)
    AS dataproducts_outputports_with_testresults_percentage,
  d.dataproducts_last_updated_at,
  COALESCE(a.assets_total, 0) AS assets_total,
  f.data_platform,
  TIMESTAMP '{updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")}' AS updated_at
FROM stg_organizations o
LEFT JOIN int_organization_users u ON o.organization_id = u.organization_id
LEFT JOIN int_organization_data_products d ON o.organization_id = d.organization_id
LEFT JOIN int_organization_output_ports p ON o.organization_id = p.organization_id
LEFT JOIN int_organization_data_platform f ON o.organization_id = f.organization_id
LEFT JOIN int_organization_assets a ON o.organization_id = a.organization_id
"""


def customer_activity(spark: SparkSession, raw: dict[str, DataFrame], as_of: date, updated_at: datetime) -> DataFrame:
    """The output, computed from raw tables (as read by the project's input ports)."""
    for table, frame in raw.items():
        frame.createOrReplaceTempView(f"raw_{table}")
    return spark.sql(query(as_of, updated_at))


def plain_session() -> SparkSession:
    """A plain Spark job's session, the yardstick of the performance issue: all local cores,
    4 shuffle partitions, Spark's default 1 GiB driver, no tuning of the JVM."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master("local[*]").appName("straightforward")
    return builder.config("spark.sql.shuffle.partitions", "4").config("spark.sql.session.timeZone", "UTC").getOrCreate()


def main(argv: list[str] | None = None) -> int:
    """The port as a job of its own, to time as a whole process beside `customer-activity build`.

    From the raw tables, read and checked by the project's input ports, to Parquet, in a
    session with the job's own local settings, or with --plain in a plain Spark job's.
    """
    parser = argparse.ArgumentParser(description="the straightforward dbt port, from raw tables to Parquet")
    parser.add_argument("source", type=Path, help="directory with one Parquet dataset per raw table")
    parser.add_argument("output", type=Path, help="where the Parquet output goes (replaced)")
    parser.add_argument("as_of", type=date.fromisoformat, help="as-of date, YYYY-MM-DD")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="in a plain Spark job's session instead of the job's own (see plain_session)",
    )
    args = parser.parse_args(argv)
    # Otherwise the session the build would choose for the same raw files.
    spark = (
        plain_session()
        if args.plain
        else session.create_spark_session(input_bytes=local_catalog.source_bytes(args.source))
    )
    raw = inputs.read_raw_tables(spark, local_catalog.mounted_source(spark, args.source))
    customer_activity(spark, raw, args.as_of, datetime.now(UTC)).write.mode("overwrite").parquet(str(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
