"""Pre-publish audit: the candidate output is checked against the contract.

Nothing is published unless every check passes. The checks come from the contract:
the schema (names, order, types), NOT NULL for required columns, uniqueness, and the
contract's quality rules. The plain checks (rows, NULLs, row rules) are one aggregation,
which a build observes on the rows as it writes them; distinct counts are one more over
the staged candidate; any other SQL rule is a query of its own against it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

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


def _metrics(contract: OutputContract) -> tuple[dict[str, Column], dict[str, Column]]:
    """Every check that a pass over the candidate can answer: (plain, distinct) aggregations by alias.

    Row counts, NULLs and plain row rules are plain aggregations, which Spark finishes
    within the scan, and which the build observes as it writes the candidate; duplicates
    need a distinct count, which Spark answers with a shuffle of its own, so they get an
    aggregation of their own over the staged candidate.
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
    return plain, distinct


def plain_metrics(contract: OutputContract) -> list[Column]:
    """The aggregations a build can observe while it writes the candidate (see `audit`)."""
    return list(_metrics(contract)[0].values())


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


def audit(
    candidate: DataFrame, contract: OutputContract, view: str, observed: Mapping[str, float] | None = None
) -> Audit:
    """Every contract check on `candidate`; `view` is the temp view SQL rules query.

    `observed`: the values of `plain_metrics`, observed on exactly the rows written to
    `candidate`; without them the audit aggregates them itself.
    """
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

    plain, distinct = _metrics(contract)
    metrics = dict(observed) if observed is not None else aggregate(candidate, list(plain.values()))
    if distinct:
        metrics |= aggregate(candidate, list(distinct.values()))
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
