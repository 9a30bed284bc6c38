# Databricks notebook source
# MAGIC %md
# MAGIC # Explore Customer Activity, layer by layer
# MAGIC
# MAGIC Runs the product's own transforms step by step: input ports, staging, intermediate models,
# MAGIC output port. Every cell shows the layer it builds, so that a rule can be checked on real rows.
# MAGIC
# MAGIC - **On Databricks** it reads the raw tables from Unity Catalog (widgets `catalog`,
# MAGIC   `source_schema`, `as_of`). Open it from the deployed bundle: the first cell installs the
# MAGIC   project from the bundle's files.
# MAGIC - **Locally** it reads the raw tables of your last `python3 dev.py run` (`local-run/raw`,
# MAGIC   or `$CUSTOMER_ACTIVITY_WORKDIR/raw`) for that run's as-of date, and generates the same
# MAGIC   sample there only when there is none. It runs on embedded Spark:
# MAGIC   `.venv/bin/python notebooks/explore_customer_activity.py`, or open it in an editor that
# MAGIC   knows Databricks notebook cells. Its charts go to `local-run/charts`.
# MAGIC
# MAGIC The notebook never publishes.

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

# MAGIC %restart_python

# COMMAND ----------

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_activity.jobs import inputs, local_catalog, session
from customer_activity.jobs.contract import load_contract
from customer_activity.transforms import intermediate, output_ports
from customer_activity.transforms.staging import stage_all

ON_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

try:
    spark  # noqa: B018 - Databricks notebooks define it
except NameError:
    spark = session.create_spark_session()


try:
    notebook_dir = Path(__file__).resolve().parent
except NameError:  # a Databricks notebook runs in its own directory, without __file__
    notebook_dir = Path.cwd()


def show(frame: DataFrame, rows: int = 10) -> None:
    if ON_DATABRICKS:
        display(frame.limit(rows))  # noqa: F821 - a Databricks notebook builtin
    else:
        frame.show(rows, truncate=False)


# COMMAND ----------

# MAGIC %md
# MAGIC ## Parameters and input ports

# COMMAND ----------

if ON_DATABRICKS:
    dbutils.widgets.text("catalog", "entropy_data_prod")  # noqa: F821
    dbutils.widgets.text("source_schema", "entropydata_postgres")  # noqa: F821
    dbutils.widgets.text("as_of", datetime.now(UTC).date().isoformat())  # noqa: F821
    as_of = date.fromisoformat(dbutils.widgets.get("as_of"))  # noqa: F821
    source = inputs.InputLocation(dbutils.widgets.get("catalog"), dbutils.widgets.get("source_schema"))  # noqa: F821
else:
    # Local tooling, on the path that dev.py gives the environment; not in the wheel.
    from customer_activity_dev import sample_data

    # The local run's directory: what `python3 dev.py run` built, for the day it built it.
    workdir = Path(os.environ.get("CUSTOMER_ACTIVITY_WORKDIR") or notebook_dir.parent / "local-run")
    report = workdir / "output" / local_catalog.REPORT_FILE
    as_of = (
        date.fromisoformat(json.loads(report.read_text())["as_of"]) if report.is_file() else datetime.now(UTC).date()
    )
    if not (workdir / "raw" / "organization").is_dir():
        print(f"No local run in {workdir}: generating its sample, as `python3 dev.py run` would.")
        sample_data.generate(workdir / "raw", as_of=as_of)
    source = local_catalog.mounted_source(spark, workdir / "raw")

raw = inputs.read_raw_tables(spark, source)
print(f"as-of date: {as_of}; inputs: {source.catalog}.{source.schema} ({source})")
show(raw["organization"].orderBy("organization_id", F.col("version").desc_nulls_last()))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Staging: the latest version of every entity
# MAGIC Raw tables keep every version; staging keeps one row per key (highest `version`, then
# MAGIC `_dlt_load_id`, then `_dlt_id`), drops rows without a key, keeps the columns the
# MAGIC product uses and parses timestamps (unparseable ones become NULL).

# COMMAND ----------

staged = stage_all(raw)
for table, frame in staged.items():
    print(f"{table:<20} raw {raw[table].count():>7}   staged {frame.count():>7}")
show(staged["organization"])

# COMMAND ----------

# MAGIC %md
# MAGIC ## Intermediate models: per-organisation logic

# COMMAND ----------

users = intermediate.int_organization_users(staged["organization_member"], as_of)
data_products = intermediate.int_organization_data_products(staged["data_product"], as_of)
output_ports_enriched = intermediate.int_output_ports_enriched(
    staged["output_port"], staged["data_product"], staged["data_contract"], staged["test_result"]
)
organization_output_ports = intermediate.int_organization_output_ports(output_ports_enriched)
assets = intermediate.int_organization_assets(staged["asset"])

show(users.orderBy(F.col("users_total").desc()))
show(output_ports_enriched)
show(organization_output_ports.orderBy(F.col("dataproducts_outputports_total").desc()))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Output port: the contract's columns, one row per organisation

# COMMAND ----------

contract = load_contract()
customer_activity = output_ports.customer_activity(staged, as_of, datetime.now(UTC), contract.spark_schema)
customer_activity.printSchema()
show(customer_activity.orderBy(F.col("users_added_30d").desc(), "organization_id"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## What customer success looks for
# MAGIC Ramp-ups (many users added in the last 30 days) and quiet accounts (users, but nobody new and
# MAGIC no data product added).

# COMMAND ----------

ramp_ups = customer_activity.where(F.col("users_added_30d") > 0).orderBy(F.col("users_added_30d").desc())
quiet = customer_activity.where(
    (F.col("users_total") > 0) & (F.col("users_added_30d") == 0) & (F.col("dataproducts_added_30d") == 0)
)
show(ramp_ups.select("organization_id", "organization_vanity_url", "users_total", "users_added_30d", "data_platform"))
show(quiet.select("organization_id", "organization_vanity_url", "users_total", "users_last_signed_up_at"))
show(customer_activity.groupBy("data_platform").count().orderBy(F.col("count").desc()))

# COMMAND ----------

# MAGIC %md
# MAGIC ## What consumers see: the dashboard's views
# MAGIC The same queries as the deployed AI/BI dashboard (`resources/dashboard/queries/`), here over
# MAGIC the output computed above. On Databricks each result is displayed (pick a chart in the cell);
# MAGIC locally each view is drawn and saved as a PNG in `<workdir>/charts`, replaced on every run.

# COMMAND ----------

queries = notebook_dir.parent / "resources" / "dashboard" / "queries"
customer_activity.createOrReplaceTempView("customer_activity")
views = {path.stem: spark.sql(path.read_text()) for path in sorted(queries.glob("*.sql"))}

# Each chart: the view, its category column, its value column(s), a title.
CHARTS = {
    "ramping_up": (
        "organization_vanity_url",
        ["users_added_30d", "dataproducts_added_30d"],
        "Ramping up: added in 30 days",
    ),
    "gone_quiet": ("organization_vanity_url", ["users_total", "dataproducts_total"], "Gone quiet: totals"),
    "platform_mix": ("data_platform", ["customers"], "Customers by main data platform"),
    "contract_coverage": ("band", ["customers"], "Output-port coverage (data contract | test results)"),
}

if ON_DATABRICKS:
    for name, view in views.items():
        print(name)
        display(view)  # noqa: F821 - a Databricks notebook builtin
else:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    charts_dir = workdir / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    print("overview:", views["overview"].first().asDict(), "| freshness:", views["freshness"].first().asDict())
    charts = {}
    for name, (category, values, title) in CHARTS.items():
        rows = views[name].limit(15).collect()
        if name == "contract_coverage":
            labels = [f"{row.coverage}\n{row.band}" for row in rows]
        else:
            labels = [str(row[category]) for row in rows]
        figure, axes = plt.subplots(figsize=(10, 4.5))
        width = 0.8 / len(values)
        for index, value in enumerate(values):
            positions = [i + index * width for i in range(len(rows))]
            axes.bar(positions, [row[value] or 0 for row in rows], width=width, label=value)
        axes.set_xticks([i + width * (len(values) - 1) / 2 for i in range(len(rows))], labels, rotation=45, ha="right")
        axes.set_title(title)
        axes.legend()
        figure.tight_layout()
        charts[name] = charts_dir / f"{name}.png"
        figure.savefig(charts[name], dpi=80)
        plt.close(figure)
    print("charts:", ", ".join(str(path) for path in charts.values()))
