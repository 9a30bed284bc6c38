"""The output port's data contract (ODCS v3.1.0), read at run time.

The contract is the single source of truth: the output's Spark schema is derived
from it with datacontract-cli, and so are the checks that guard publication.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from datacontract.data_contract import DataContract
from datacontract.export.spark_exporter import to_pyspark_schema
from open_data_contract_standard.model import DataQuality, OpenDataContractStandard
from pyspark.sql import types as T

from customer_activity.jobs.errors import ContractDefinitionError

logger = logging.getLogger(__name__)

CONTRACT_FILE = "customer_activity_v1.odcs.yaml"
OUTPUT_SCHEMA = "customer_activity"

# The comparison operators ODCS defines for a rule's measured value.
OPERATORS = {
    "mustBe": lambda value, arg: value == arg,
    "mustNotBe": lambda value, arg: value != arg,
    "mustBeGreaterThan": lambda value, arg: value > arg,
    "mustBeGreaterOrEqualTo": lambda value, arg: value >= arg,
    "mustBeLessThan": lambda value, arg: value < arg,
    "mustBeLessOrEqualTo": lambda value, arg: value <= arg,
    "mustBeBetween": lambda value, arg: arg[0] <= value <= arg[1],
    "mustNotBeBetween": lambda value, arg: not arg[0] <= value <= arg[1],
}
LIBRARY_METRICS = ("rowCount", "nullValues", "duplicateValues")

# Most row rules have this shape: count the rows where a condition holds. When the
# condition is plain (column names, numbers, comparisons, AND/OR/NOT, IS NULL), the
# audit counts it inside its one aggregation and the catalog can enforce its negation
# as a CHECK constraint. Anything else (subqueries, functions) runs as its own query.
_COUNT_WHERE = re.compile(r"\s*SELECT\s+COUNT\(\*\)\s+FROM\s+\$\{model\}\s+WHERE\s+(?P<condition>.+?)\s*;?\s*", re.I | re.S)
_PLAIN_CONDITION = re.compile(r"[A-Za-z0-9_ .<>=!()+\-*/]+")
_CONDITION_KEYWORDS = {"and", "or", "not", "is", "null", "between", "true", "false"}


def row_condition(query: str | None) -> str | None:
    """The WHERE condition of a `SELECT COUNT(*) FROM ${model} WHERE ...` rule, if plain."""
    match = _COUNT_WHERE.fullmatch(query or "")
    if match is None:
        return None
    condition = match.group("condition")
    if not _PLAIN_CONDITION.fullmatch(condition):
        return None
    words = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", condition)}
    calls = {w.lower() for w in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", condition)}
    if {"select", "from"} & words or calls - _CONDITION_KEYWORDS:
        return None
    return condition


@dataclass(frozen=True)
class QualityRule:
    """One quality rule of the contract, as the pre-publish audit evaluates it."""

    name: str
    column: str | None
    metric: str
    query: str | None
    operator: str
    threshold: float | tuple[float, float]
    row_condition: str | None = None

    def accepts(self, value: float) -> bool:
        return OPERATORS[self.operator](value, self.threshold)

    def describe_threshold(self) -> str:
        return f"{self.operator} {list(self.threshold) if isinstance(self.threshold, tuple) else self.threshold}"


@dataclass(frozen=True)
class OutputContract:
    """What the job needs to know of the contract to build and guard the output."""

    path: Path
    id: str
    version: str
    data_product_id: str | None
    schema_name: str
    spark_schema: T.StructType
    required_columns: tuple[str, ...]
    unique_columns: tuple[str, ...]
    rules: tuple[QualityRule, ...]
    model: OpenDataContractStandard


def default_contract_path() -> Path:
    """The contract shipped in the wheel, or the repository's copy in a checkout."""
    packaged = resources.files("customer_activity").joinpath("datacontracts", CONTRACT_FILE)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "datacontracts" / CONTRACT_FILE


def _operator(quality: DataQuality, where: str) -> tuple[str, float | tuple[float, float]]:
    given = {name: getattr(quality, name) for name in OPERATORS if getattr(quality, name) is not None}
    if len(given) != 1:
        raise ContractDefinitionError(f"{where}: needs exactly one of {', '.join(OPERATORS)}")
    operator, threshold = given.popitem()
    if operator in ("mustBeBetween", "mustNotBeBetween"):
        return operator, (float(threshold[0]), float(threshold[1]))
    return operator, float(threshold)


def _rule(quality: DataQuality, schema_name: str, column: str | None) -> QualityRule:
    where = f"quality rule on {schema_name}.{column}" if column else f"quality rule on {schema_name}"
    operator, threshold = _operator(quality, where)
    if quality.type == "sql":
        if not quality.query:
            raise ContractDefinitionError(f"{where}: a sql rule needs a query")
        metric, query = "sql", quality.query
    elif quality.type in (None, "library"):
        if quality.metric not in LIBRARY_METRICS:
            raise ContractDefinitionError(
                f"{where}: metric {quality.metric!r} is not supported; use one of {', '.join(LIBRARY_METRICS)}"
            )
        if quality.metric != "rowCount" and column is None:
            raise ContractDefinitionError(f"{where}: metric {quality.metric} belongs on a property")
        metric, query = quality.metric, None
    else:
        raise ContractDefinitionError(f"{where}: rule type {quality.type!r} cannot be checked before publishing")
    name = quality.description or quality.name or f"{metric} {operator} {threshold}"
    return QualityRule(
        name=name,
        column=column,
        metric=metric,
        query=query,
        operator=operator,
        threshold=threshold,
        row_condition=row_condition(query),
    )


def load_contract(path: Path | None = None) -> OutputContract:
    """Read, lint and interpret the contract; any problem is a ContractDefinitionError."""
    path = path or default_contract_path()
    if not path.is_file():
        raise ContractDefinitionError(f"data contract not found: {path}")
    stat = path.stat()
    return _load_contract(path.resolve(), stat.st_mtime_ns, stat.st_size)


# Linting parses the ODCS JSON schema, which costs most of a second; a contract file
# that has not changed is read once per process (tests and notebooks load it often).
@functools.lru_cache(maxsize=8)
def _load_contract(path: Path, modified_ns: int, size: int) -> OutputContract:
    lint = DataContract(data_contract_file=str(path)).lint()
    # Lint warnings (say, a rule datacontract-cli cannot test) are judged below by
    # what the pre-publish audit can check; only invalid ODCS stops here.
    failures = [f"{c.name}: {c.reason}" for c in lint.checks if c.result in ("failed", "error")]
    if failures:
        raise ContractDefinitionError(f"data contract {path} is not valid ODCS: " + "; ".join(failures))
    for check in lint.checks:
        if check.result == "warning":
            logger.warning("data contract %s: %s: %s", path, check.name, check.reason)
    model = DataContract(data_contract_file=str(path)).get_data_contract()
    schema_obj = next((s for s in model.schema_ or [] if s.name == OUTPUT_SCHEMA), None)
    if schema_obj is None:
        raise ContractDefinitionError(f"data contract {path} has no schema named {OUTPUT_SCHEMA!r}")
    try:
        spark_schema = to_pyspark_schema(schema_obj)
    except Exception as error:  # the exporter raises plain errors for unknown types
        raise ContractDefinitionError(f"cannot derive a Spark schema from {path}: {error}") from error
    properties = schema_obj.properties or []
    rules = [_rule(q, OUTPUT_SCHEMA, None) for q in schema_obj.quality or []]
    for prop in properties:
        rules.extend(_rule(q, OUTPUT_SCHEMA, prop.name) for q in prop.quality or [])
    return OutputContract(
        path=path,
        id=model.id,
        version=model.version,
        data_product_id=model.dataProduct,
        schema_name=OUTPUT_SCHEMA,
        spark_schema=spark_schema,
        required_columns=tuple(p.name for p in properties if p.required),
        unique_columns=tuple(p.name for p in properties if p.unique or p.primaryKey),
        rules=tuple(rules),
        model=model,
    )
