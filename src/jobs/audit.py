"""Pre-publish audit: the candidate output is checked against the contract.

Nothing is published unless every check passes. The checks come from the contract:
the schema (names, order, types), NOT NULL for required columns, uniqueness, and the
contract's quality rules. All column checks share one aggregation over the staged
candidate; each SQL rule is one query against it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from customer_activity.jobs.contract import OutputContract, QualityRule

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\$\{(model|table|object|schema)\}")


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, str | bool]:
        return asdict(self)


def _null_count(column: str) -> Column:
    return F.count_if(F.col(column).isNull()).alias(f"nulls:{column}")


def _duplicate_count(column: str) -> Column:
    return (F.count(F.col(column)) - F.count_distinct(F.col(column))).alias(f"duplicates:{column}")


def _metric_alias(index: int, rule: QualityRule) -> str | None:
    """Where the one aggregation keeps a rule's value; None for a rule that needs its own query."""
    if rule.metric == "sql":
        return f"rule:{index}" if rule.row_condition is not None else None
    return {"rowCount": "rows", "nullValues": f"nulls:{rule.column}", "duplicateValues": f"duplicates:{rule.column}"}[
        rule.metric
    ]


def _column_metrics(candidate: DataFrame, contract: OutputContract) -> dict[str, float]:
    """Every check that a pass over the candidate can answer.

    Row counts, NULLs and plain row rules share one aggregation, which Spark finishes
    within the scan; duplicates need a distinct count, which Spark answers with a
    shuffle of its own, so they get a second aggregation instead of doubling the rows
    of the first.
    """
    plain = {"rows": F.count(F.lit(1)).alias("rows")}
    distinct: dict[str, Column] = {}
    for column in contract.required_columns:
        plain[f"nulls:{column}"] = _null_count(column)
    for column in contract.unique_columns:
        distinct[f"duplicates:{column}"] = _duplicate_count(column)
    for index, rule in enumerate(contract.rules):
        alias = _metric_alias(index, rule)
        if alias is None or alias in plain or alias in distinct:
            continue
        if rule.metric == "nullValues" and rule.column is not None:
            plain[alias] = _null_count(rule.column)
        elif rule.metric == "duplicateValues" and rule.column is not None:
            distinct[alias] = _duplicate_count(rule.column)
        elif rule.row_condition is not None:
            # The contract's own condition, checked to be plain column arithmetic.
            plain[alias] = F.count_if(F.expr(rule.row_condition)).alias(alias)
    metrics = aggregate(candidate, list(plain.values()))
    if distinct:
        metrics |= aggregate(candidate, list(distinct.values()))
    return metrics


def aggregate(frame: DataFrame, columns: list[Column]) -> dict[str, int | float]:
    """The one row of a global aggregation, by column alias."""
    row = frame.agg(*columns).first()
    if row is None:  # Spark returns exactly one row for an aggregation without groups
        raise RuntimeError("a global aggregation returned no row")
    return dict(row.asDict())


def _sql_value(candidate: DataFrame, query: str, view: str) -> float | None:
    row = candidate.sparkSession.sql(_PLACEHOLDER.sub(view, query)).first()
    return None if row is None else row[0]


@dataclass(frozen=True)
class Audit:
    checks: list[CheckResult]
    rows: int | None

    @property
    def failures(self) -> list[str]:
        return [f"{check.name}: {check.detail}" for check in self.checks if not check.passed]


def audit(candidate: DataFrame, contract: OutputContract, view: str) -> Audit:
    """Every contract check on `candidate`; `view` is the temp view SQL rules query."""
    differences = contract.schema_differences(candidate.schema)
    results = [
        CheckResult(
            name="schema matches the contract",
            passed=not differences,
            detail="; ".join(differences) or f"{len(contract.spark_schema.names)} columns",
        )
    ]
    if differences:
        return Audit(checks=results, rows=None)

    metrics = _column_metrics(candidate, contract)
    results.extend(
        CheckResult(
            f"{column} is not NULL", metrics[f"nulls:{column}"] == 0, f"{metrics[f'nulls:{column}']} NULL values"
        )
        for column in contract.required_columns
    )
    results.extend(
        CheckResult(
            f"{column} is unique", metrics[f"duplicates:{column}"] == 0, f"{metrics[f'duplicates:{column}']} duplicates"
        )
        for column in contract.unique_columns
    )
    candidate.createOrReplaceTempView(view)
    try:
        for index, rule in enumerate(contract.rules):
            alias = _metric_alias(index, rule)
            value = metrics[alias] if alias is not None else _sql_value(candidate, str(rule.query), view)
            passed = value is not None and rule.accepts(value)
            results.append(CheckResult(rule.name, passed, f"measured {value}, expected {rule.describe_threshold()}"))
    finally:
        candidate.sparkSession.catalog.dropTempView(view)
    for result in results:
        logger.info("audit %s: %s (%s)", "passed" if result.passed else "FAILED", result.name, result.detail)
    return Audit(checks=results, rows=int(metrics["rows"]))
