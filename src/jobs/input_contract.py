"""The input side's contract: the provider's snapshot, its row rules, and the quarantine of rows that break them.

The provider's contract (datacontracts/input_ports/) states row rules on the columns of
its tables: a key or a version that must be present (`nullValues`), a timestamp that
must look like one (`invalidValues` with a `pattern`), each with an `id` and a tolerated
share of rows. Before any work, every raw table is counted against its rules in one
Spark job. The offending rows go, beside the build, to `customer_activity_quarantine` in the product's
internal schema (never the consumers'), one row per broken rule with the run id, the
table, the key, the rule and the raw row as JSON: what a person hands to the provider's
team. A table beyond a rule's tolerance stops the run before anything is built (exit 3).
Within the tolerances the build goes on and treats those rows as the specification says
(the output does not change): the quarantine is evidence, not a filter.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.errors import InputError, first_line
from customer_activity.jobs.publishing import TABLE_FORMAT, OutputLocation
from customer_activity.jobs.secrets import Secret

logger = logging.getLogger(__name__)

QUARANTINE_TABLE = "customer_activity_quarantine"


@dataclass(frozen=True)
class RowRule:
    """One of the provider's row rules: a column that must be present, or match a pattern."""

    id: str
    table: str
    column: str
    # None: the value must be present; else the present value must match this regular expression.
    pattern: str | None
    # At most this many offending rows, in percent of the table's rows where `percent`.
    limit: float
    percent: bool

    @property
    def condition(self) -> str:
        """What breaks the rule, as a person reads it."""
        return f"{self.column} is NULL" if self.pattern is None else f"{self.column} does not match {self.pattern}"

    def broken(self) -> Column:
        value = F.col(self.column)
        if self.pattern is None:
            return value.isNull()
        text = value.cast("string")
        return text.isNotNull() & ~text.rlike(self.pattern)

    def exceeded(self, offending: int, rows: int) -> bool:
        return (100.0 * offending / rows if self.percent else offending) > self.limit if rows else False

    def tolerance(self) -> str:
        return f"{self.limit:g} %" if self.percent else f"{self.limit:g} rows"


def row_rules(schema: list[dict[str, object]]) -> tuple[RowRule, ...]:
    """The row rules of an ODCS `schema`: its properties' nullValues and pattern invalidValues rules.

    Other rules (SQL, row counts, value lists) are table-level checks for datacontract-cli.
    A rule without a threshold tolerates nothing, as datacontract-cli reads it.
    """
    rules = []
    for table in schema:
        for prop in table.get("properties") or []:  # type: ignore[attr-defined]
            for quality in prop.get("quality") or []:
                pattern = (quality.get("arguments") or {}).get("pattern")
                if quality.get("metric") == "nullValues" or (quality.get("metric") == "invalidValues" and pattern):
                    rules.append(
                        RowRule(
                            id=str(quality.get("id") or f"{table['name']}_{prop['name']}_{quality['metric']}"),
                            table=str(table["name"]),
                            column=str(prop["name"]),
                            pattern=pattern if quality["metric"] == "invalidValues" else None,
                            limit=_limit(quality),
                            percent=quality.get("unit") == "percent",
                        )
                    )
    return tuple(rules)


def _limit(quality: Mapping[str, object]) -> float:
    for bound in ("mustBeLessOrEqualTo", "mustBe"):
        if quality.get(bound) is not None:
            return float(quality[bound])  # type: ignore[arg-type]
    if quality.get("mustBeLessThan") is not None:
        # Counts are whole numbers: fewer than n is at most n - 1 rows; a share keeps its bound.
        less_than = float(quality["mustBeLessThan"])  # type: ignore[arg-type]
        return less_than if quality.get("unit") == "percent" else less_than - 1
    return 0.0


# The classifications datacontract-cli masks in its output: columns so classified hold
# personal or secret values, which nothing of this product copies (the quarantine's raw rows).
WITHHELD = frozenset({"pii", "personal", "confidential", "restricted", "sensitive", "secret"})


@dataclass(frozen=True)
class ProviderContract:
    """The provider's contract of the raw tables, as this product's snapshot holds it."""

    id: str
    version: str
    path: Path
    # Per table and column, the property as the contract states it (types, classification).
    promised: dict[str, dict[str, dict[str, Any]]]
    # Per table, the column every row of one entity carries (the table's `entityKey`).
    keys: dict[str, str | None]
    rules: tuple[RowRule, ...]
    # Per table, the columns classified as personal or secret: never copied out of the raw tables.
    withheld: dict[str, frozenset[str]]

    def __str__(self) -> str:
        return f"{self.id} v{self.version}"


def load_provider_contract(path: Path) -> ProviderContract:
    """The snapshot at `path`; one that cannot be read stops the run before anything is read."""
    try:
        document = yaml.safe_load(path.read_text())
        schema = document["schema"]
        promised = {s["name"]: {p["name"]: p for p in s.get("properties") or []} for s in schema}
        keys = {s["name"]: _custom(s, "entityKey") for s in schema}
        withheld = {
            s["name"]: frozenset(p["name"] for p in s.get("properties") or [] if p.get("classification") in WITHHELD)
            for s in schema
        }
        return ProviderContract(
            str(document["id"]),
            str(document.get("version", "")),
            path,
            promised,
            keys,
            row_rules(schema),
            withheld,
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise InputError(f"the provider's contract {path} cannot be read ({first_line(error)})") from None


def _custom(schema: dict[str, Any], name: str) -> str | None:
    values = [c.get("value") for c in schema.get("customProperties") or [] if c.get("property") == name]
    return str(values[0]) if values else None


def quarantine_table(output: OutputLocation) -> TableName:
    return TableName(output.table.catalog, output.internal_schema, QUARANTINE_TABLE)


@dataclass(frozen=True)
class Counted:
    """One raw table's rows, and how many of them break each of its rules."""

    rows: int
    broken: dict[str, int]


def count(raw: Mapping[str, DataFrame], rules: tuple[RowRule, ...]) -> dict[str, Counted]:
    """The rows of every table with rules, and its offending rows per rule, in one Spark job."""
    ruled = {table: [rule for rule in rules if rule.table == table] for table in raw}
    per_table = [
        raw[table].agg(
            F.lit(table).alias("table"),
            F.count(F.lit(1)).alias("rows"),
            F.array(*[F.count_if(rule.broken()) for rule in table_rules]).alias("broken"),
        )
        for table, table_rules in ruled.items()
        if table_rules
    ]
    if not per_table:
        return {}
    return {
        row["table"]: Counted(row["rows"], {r.id: n for r, n in zip(ruled[row["table"]], row["broken"], strict=True)})
        for row in functools.reduce(DataFrame.unionByName, per_table).collect()
    }


def offending_rows(
    raw: Mapping[str, DataFrame],
    rules: tuple[RowRule, ...],
    keys: Mapping[str, str | None],
    withheld: Mapping[str, frozenset[str]],
    run_id: str,
    at: datetime,
) -> DataFrame:
    """One row per raw row and rule it breaks: run, table, key, rule, column and the raw row as JSON.

    The raw row leaves out the `withheld` columns (personal data): the quarantine is read by
    other people than the raw tables.
    """
    parts = []
    for table, frame in raw.items():
        table_rules = [rule for rule in rules if rule.table == table]
        if not table_rules:
            continue
        hidden, key = withheld.get(table, frozenset()), keys.get(table)
        named = [F.struct(F.lit(r.id).alias("rule"), F.lit(r.column).alias("column")) for r in table_rules]
        broken = F.filter(
            F.array(*[F.when(r.broken(), name) for r, name in zip(table_rules, named, strict=True)]),
            lambda rule: rule.isNotNull(),
        )
        parts.append(
            frame.where(functools.reduce(lambda a, b: a | b, [r.broken() for r in table_rules]))
            .select(
                F.lit(run_id).alias("run_id"),
                F.lit(at).alias("quarantined_at"),
                F.lit(table).alias("source_table"),
                (F.col(key) if key else F.lit(None)).cast("string").alias("key"),
                F.explode(broken).alias("broken"),
                F.to_json(F.struct(*[frame[c] for c in frame.columns if c not in hidden])).alias("raw_row"),
            )
            .select("run_id", "quarantined_at", "source_table", "key", "broken.rule", "broken.column", "raw_row")
        )
    return functools.reduce(DataFrame.unionByName, parts)


def offending(counted: Mapping[str, Counted]) -> dict[str, dict[str, int]]:
    """Per table, the rules some rows break and how many rows break each: the run report's counts."""
    broken = {table: {rule: n for rule, n in c.broken.items() if n} for table, c in counted.items()}
    return {table: rules for table, rules in broken.items() if rules}


def quarantine(
    spark: SparkSession,
    output: OutputLocation,
    raw: Mapping[str, DataFrame],
    provider: ProviderContract,
    run_id: str,
    at: datetime,
) -> None:
    """Append the offending rows to the quarantine table; a failure is logged, never raised.

    The quarantine is evidence: the build's outcome does not depend on it, and a table that
    cannot be written to must not stop every build until someone repairs it.
    """
    table = quarantine_table(output)
    try:
        rows = offending_rows(raw, provider.rules, provider.keys, provider.withheld, run_id, at)
        output.ensure_internal_schema(spark)
        rows.write.format(TABLE_FORMAT).mode("append").option("mergeSchema", "true").saveAsTable(table.quoted)
    except Exception as error:  # noqa: BLE001 - whatever it is, the build's own outcome comes first
        logger.error("the offending raw rows could not be quarantined in %s: %s", table, first_line(error))


def check_tolerances(provider: ProviderContract, counted: Mapping[str, Counted], where: str) -> None:
    """Stop the run (InputError) where a table breaks a rule in more rows than the rule tolerates.

    The message names each table, rule, share and tolerance, and `where` the rows are.
    """
    beyond = [
        f"{rule.table}: {n} of {counted[rule.table].rows} rows ({100.0 * n / counted[rule.table].rows:.1f} %) "
        f"break {rule.id} ({rule.condition}), tolerated {rule.tolerance()}"
        for rule in provider.rules
        if rule.table in counted
        and rule.exceeded(n := counted[rule.table].broken.get(rule.id, 0), counted[rule.table].rows)
    ]
    if beyond:
        raise InputError(
            f"the input tables break the provider's contract {provider} beyond its tolerances; nothing was built "
            f"or published. The offending rows are in {where}:\n" + "\n".join(f"  - {line}" for line in beyond)
        )


def compare_published(provider: ProviderContract, marketplace: tuple[str, Secret] | None) -> None:
    """Warn, never fail, where the provider publishes another version of its contract than the snapshot's.

    The contract guard in CI tells whether the change breaks what the job reads; a build
    only says that one happened, with one request.
    """
    if marketplace is None:
        logger.info("the provider's contract %s was not compared with the published one: no marketplace key", provider)
        return
    # Loaded only here: a build without a marketplace key pays nothing for the API client.
    from entropy_data_sdk import ApiError, EntropyDataClient  # noqa: PLC0415

    host, api_key = marketplace
    try:
        with EntropyDataClient(api_key.reveal(), host, timeout=10.0) as client:
            published = client.data_contracts.get(provider.id)
    # Whatever keeps the comparison from happening (no answer, a refusal, an answer that is no
    # contract) is worth a warning, never the build.
    except Exception as error:  # noqa: BLE001
        # The status or the error's kind only: the server's words could echo the key.
        reason = f"HTTP {error.status_code}" if isinstance(error, ApiError) else type(error).__name__
        logger.warning("the provider's contract %s could not be compared with the published one (%s)", provider, reason)
        return
    version = str(published.get("version", "")) if isinstance(published, dict) else "unknown"
    if version != provider.version:
        logger.warning(
            "the provider publishes version %s of its contract %s, this build's snapshot is version %s: the "
            "contract guard (.ci/contract_guard.py) tells whether the change breaks what the job reads",
            version,
            provider.id,
            provider.version,
        )
