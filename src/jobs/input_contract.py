"""The input side's contract: the provider's snapshot, its row rules, and the quarantine of rows that break them.

The provider's contract (datacontracts/input_ports/) states row rules on the columns of
its tables: a key or a version that must be present (`nullValues`), a timestamp that
must look like one (`invalidValues` with a `pattern`), each with an `id` and a tolerated
share of rows. Beside the build, in one pass over the raw tables, the offending rows go
to `customer_activity_quarantine` in the product's internal schema (never the
consumers'), one row per broken rule with the run id, the table, the key, the rule, the
offending value and dlt's ids of the row: what a person hands to the provider's team. A table beyond a rule's
tolerance stops the run before the audit (exit 3): nothing is published. Within the
tolerances the build goes on and treats those rows as the specification says (the output
does not change): the quarantine is evidence, not a filter.
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

from customer_activity.jobs.errors import CustomerActivityError, InputError, first_line
from customer_activity.jobs.publishing import TABLE_FORMAT, OutputLocation
from customer_activity.jobs.report import TableReport
from customer_activity.jobs.secrets import Secret
from customer_activity.transforms.input_ports import DLT_ID, DLT_LOAD_ID

logger = logging.getLogger(__name__)


class QuarantineError(CustomerActivityError):
    """The offending raw rows could not be quarantined (exit code 1, as any failure of the job's own)."""


QUARANTINE_TABLE = "customer_activity_quarantine"


@dataclass(frozen=True)
class RowRule:
    """One of the provider's row rules: a column that must be present, or match a pattern."""

    id: str
    table: str
    column: str
    # None: the value must be present; else the present value must match this regular expression.
    pattern: str | None
    # At most this many offending rows (fewer than this many where `strict`), in percent of the
    # table's rows where `percent`.
    limit: float
    percent: bool
    strict: bool = False

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
        if not rows:
            return False
        measured = 100.0 * offending / rows if self.percent else offending
        return measured >= self.limit if self.strict else measured > self.limit

    def tolerance(self) -> str:
        bound = "fewer than " if self.strict else ""
        return bound + (f"{self.limit:g} %" if self.percent else f"{self.limit:g} rows")


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
                            strict=quality.get("mustBeLessThan") is not None,
                        )
                    )
    return tuple(rules)


def _limit(quality: Mapping[str, object]) -> float:
    # mustBe is read as an upper bound too: of offending rows, "must be 0" is what it says.
    for bound in ("mustBeLessOrEqualTo", "mustBe", "mustBeLessThan"):
        if quality.get(bound) is not None:
            return float(quality[bound])  # type: ignore[arg-type]
    return 0.0


# The classifications datacontract-cli masks in its output: columns so classified hold
# personal or secret values, which nothing of this product copies (the quarantine's raw rows).
WITHHELD = frozenset({"pii", "personal", "personal_data", "confidential", "restricted", "sensitive", "secret"})


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

    def __str__(self) -> str:
        return f"{self.id} v{self.version}"

    @property
    def withheld(self) -> dict[str, frozenset[str]]:
        """Per table, the columns classified as personal or secret: never copied out of the raw tables."""
        return {
            table: frozenset(name for name, prop in columns.items() if prop.get("classification") in WITHHELD)
            for table, columns in self.promised.items()
        }


def load_provider_contract(path: Path) -> ProviderContract:
    """The snapshot at `path`; one that cannot be read stops the run before anything is read."""
    try:
        document = yaml.safe_load(path.read_text())
        schema = document["schema"]
        promised = {s["name"]: {p["name"]: p for p in s.get("properties") or []} for s in schema}
        keys = {s["name"]: _custom(s, "entityKey") for s in schema}
        return ProviderContract(
            str(document["id"]), str(document.get("version", "")), path, promised, keys, row_rules(schema)
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise InputError(f"the provider's contract {path} cannot be read ({first_line(error)})") from None


def _custom(schema: dict[str, Any], name: str) -> str | None:
    values = [c.get("value") for c in schema.get("customProperties") or [] if c.get("property") == name]
    return str(values[0]) if values else None


def applicable(rules: tuple[RowRule, ...], table: str, frame: DataFrame) -> list[RowRule]:
    """The rules of `table` on columns its raw frame has: a rule on a column the table lacks is the
    datacontract-cli test's to report, not a reason for the build to fail."""
    return [rule for rule in rules if rule.table == table and rule.column in frame.columns]


def offending_rows(
    raw: Mapping[str, DataFrame],
    rules: tuple[RowRule, ...],
    keys: Mapping[str, str | None],
    withheld: Mapping[str, frozenset[str]],
    run_id: str,
    at: datetime,
) -> DataFrame:
    """One row per raw row and rule it breaks: run, table, key, rule, column, the offending value
    and dlt's ids of the row, by which the provider's team finds it in its table.

    Narrow on purpose: the quarantine reads only the columns its rules, keys and ids name, not
    whole rows. Values of `withheld` columns (personal data) are left out: the quarantine is
    read by other people than the raw tables.
    """
    parts = []
    for table, frame in raw.items():
        table_rules = applicable(rules, table, frame)
        if not table_rules:
            continue
        key, hidden = keys.get(table), withheld.get(table, frozenset())
        broken = F.filter(
            F.array(
                *[
                    F.when(
                        r.broken(),
                        F.struct(
                            F.lit(r.id).alias("rule"),
                            F.lit(r.column).alias("column"),
                            (F.lit(None) if r.column in hidden else F.col(r.column)).cast("string").alias("value"),
                        ),
                    )
                    for r in table_rules
                ]
            ),
            lambda rule: rule.isNotNull(),
        )

        def column(name: str | None, frame: DataFrame = frame) -> Column:
            return (F.col(name) if name and name in frame.columns else F.lit(None)).cast("string")

        parts.append(
            frame.where(functools.reduce(lambda a, b: a | b, [r.broken() for r in table_rules]))
            .select(
                F.lit(run_id).alias("run_id"),
                F.lit(at).alias("quarantined_at"),
                F.lit(table).alias("source_table"),
                column(key).alias("key"),
                F.explode(broken).alias("broken"),
                column(DLT_ID).alias("dlt_id"),
                column(DLT_LOAD_ID).alias("dlt_load_id"),
            )
            .select(
                "run_id",
                "quarantined_at",
                "source_table",
                "key",
                "broken.rule",
                "broken.column",
                "broken.value",
                "dlt_id",
                "dlt_load_id",
            )
        )
    return functools.reduce(DataFrame.unionByName, parts)


def quarantine(
    spark: SparkSession,
    output: OutputLocation,
    raw: Mapping[str, DataFrame],
    provider: ProviderContract,
    run_id: str,
    at: datetime,
) -> dict[str, dict[str, int]]:
    """Append the offending rows to the quarantine table; per table and rule, how many there are.

    One pass over the raw tables, whose rows the counts then read back: the few this run
    appended, which Delta finds by its files' statistics on `run_id`.
    """
    if not any(applicable(provider.rules, table, frame) for table, frame in raw.items()):
        return {}
    table = output.internal(QUARANTINE_TABLE)
    try:
        rows = offending_rows(raw, provider.rules, provider.keys, provider.withheld, run_id, at)
        output.ensure_internal_schema(spark)
        rows.write.format(TABLE_FORMAT).mode("append").option("mergeSchema", "true").saveAsTable(table.quoted)
        counted = spark.read.table(table.quoted).where(F.col("run_id") == run_id).groupBy("source_table", "rule")
        found = {(row["source_table"], row["rule"]): row["count"] for row in counted.count().collect()}
    # Without the quarantine the tolerances cannot be judged: the build stops, saying why.
    except Exception as error:
        raise QuarantineError(
            f"the raw rows breaking the provider's contract could not be quarantined in {table} "
            f"({type(error).__name__}: {first_line(error)}); nothing was published"
        ) from error
    quarantined: dict[str, dict[str, int]] = {}
    for rule in provider.rules:  # in the contract's order
        if (rule.table, rule.id) in found:
            quarantined.setdefault(rule.table, {})[rule.id] = found[(rule.table, rule.id)]
    return quarantined


def check_tolerances(provider: ProviderContract, tables: Mapping[str, TableReport], where: str) -> None:
    """Stop the run (InputError) where a table breaks a rule in more rows than the rule tolerates.

    The message names each table, rule, share and tolerance, and `where` the rows are.
    """
    beyond = [
        f"{rule.table}: {n} of {tables[rule.table].rows} rows ({100.0 * n / tables[rule.table].rows:.1f} %) "
        f"break {rule.id} ({rule.condition}), tolerated {rule.tolerance()}"
        for rule in provider.rules
        if rule.table in tables
        and rule.exceeded(n := tables[rule.table].quarantined.get(rule.id, 0), tables[rule.table].rows)
    ]
    if beyond:
        raise InputError(
            f"the input tables break the provider's contract {provider} beyond its tolerances; nothing was "
            f"published. The offending rows are in {where}:\n" + "\n".join(f"  - {line}" for line in beyond)
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
    from entropy_data_sdk import ApiError  # noqa: PLC0415

    from customer_activity.jobs.marketplace import Connection  # noqa: PLC0415

    try:
        with Connection(*marketplace, timeout_seconds=10.0, attempts=1).client() as client:
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
