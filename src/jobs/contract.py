"""The output port's data contract (ODCS v3.1.0), read at run time.

The contract is the single source of truth: the output's Spark schema is derived
from it with datacontract-cli, and so are the checks that guard publication.
"""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import sqlglot
from open_data_contract_standard.model import (
    CustomProperty,
    DataQuality,
    OpenDataContractStandard,
    SchemaObject,
    SchemaProperty,
    Team,
    TeamMember,
)
from pyspark.sql import types as T
from sqlglot import exp
from sqlglot.errors import SqlglotError

from customer_activity.jobs.errors import ContractDefinitionError
from customer_activity.transforms.input_ports import INPUT_PORTS

logger = logging.getLogger(__name__)

CONTRACT_FILE = "customer_activity_v1.odcs.yaml"
PROVIDER_CONTRACT_FILE = ("input_ports", "entropydata_postgres_raw_v1.odcs.yaml")
OUTPUT_SCHEMA = "customer_activity"

# The comparison operators ODCS defines for a rule's measured value; the range
# operators take a [low, high] pair, the others one number.
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "mustBe": operator.eq,
    "mustNotBe": operator.ne,
    "mustBeGreaterThan": operator.gt,
    "mustBeGreaterOrEqualTo": operator.ge,
    "mustBeLessThan": operator.lt,
    "mustBeLessOrEqualTo": operator.le,
}
_RANGES = ("mustBeBetween", "mustNotBeBetween")
OPERATORS = (*_COMPARISONS, *_RANGES)
LIBRARY_METRICS = ("rowCount", "nullValues", "duplicateValues")
# How an output column is computed from its direct sources, in OpenLineage's words.
TRANSFORMATIONS = ("IDENTITY", "TRANSFORMATION", "AGGREGATION")

# Most row rules have this shape: count the rows where a condition holds. When the
# condition is plain (columns, literals, comparisons, arithmetic, AND/OR/NOT, IS NULL,
# BETWEEN), the audit counts it inside its one aggregation and the catalog can enforce
# its negation as a CHECK constraint. Anything else (subqueries, functions) runs as its
# own query. sqlglot parses the rule, so only a condition that is entirely plain passes.
_MODEL = "__model__"
_COUNT_ROWS = sqlglot.parse_one(f"SELECT COUNT(*) FROM {_MODEL}", read="spark")
_PLAIN_NODES = (
    *(exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Neg),
    *(exp.And, exp.Or, exp.Not, exp.Is, exp.Between, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE),
    *(exp.Add, exp.Sub, exp.Mul, exp.Div),
)


def row_condition(query: str | None) -> str | None:
    """The WHERE condition of a `SELECT COUNT(*) FROM ${model} WHERE ...` rule, if plain."""
    try:
        statements = sqlglot.parse((query or "").replace("${model}", _MODEL), read="spark")
    except SqlglotError:
        return None
    if len(statements) != 1 or not isinstance(select := statements[0], exp.Select):
        return None
    where, skeleton = select.args.get("where"), select.copy()
    skeleton.set("where", None)
    if where is None or skeleton != _COUNT_ROWS:
        return None
    # Unqualified columns only: `${model}.x` or `t.x` would name no column of the staged table.
    nodes = list(where.this.walk())
    if not all(isinstance(node, _PLAIN_NODES) for node in nodes) or any(
        isinstance(node, exp.Column) and node.table for node in nodes
    ):
        return None
    return str(where.this.sql(dialect="spark"))


@dataclass(frozen=True)
class QualityRule:
    """One quality rule of the contract, as the pre-publish audit evaluates it.

    `id` is the rule's stable id: the marketplace attaches each published check to its rule
    through it, and the catalog names the rule's CHECK constraint after it.
    """

    id: str
    name: str
    column: str | None
    metric: str
    query: str | None
    operator: str
    threshold: float | tuple[float, float]
    row_condition: str | None = None

    def accepts(self, value: float) -> bool:
        if isinstance(self.threshold, tuple):
            low, high = self.threshold
            return (low <= value <= high) == (self.operator == "mustBeBetween")
        return _COMPARISONS[self.operator](value, self.threshold)

    def describe_threshold(self) -> str:
        return f"{self.operator} {list(self.threshold) if isinstance(self.threshold, tuple) else self.threshold}"


@dataclass(frozen=True)
class ColumnSources:
    """Where an output column comes from: the raw (table, column)s its value is computed from, and how."""

    columns: tuple[tuple[str, str], ...]
    transformation: str


def _one_line(text: str | None) -> str:
    """Contract descriptions are folded YAML; catalogs and lineage want them on one line."""
    return " ".join((text or "").split())


def _owner(team: Team | list[TeamMember] | None) -> str:
    """Who owns the product: the team's name, else its member whose role is `owner`, else
    its first member. ODCS 3.1 also allows `team` as a bare list of members, which
    datacontract-cli reads as a team without a name."""
    if isinstance(team, Team) and team.name:
        return team.name
    members = (team.members if isinstance(team, Team) else team) or []
    owner = next((m for m in members if (m.role or "").lower() == "owner"), members[0] if members else None)
    return (owner.username or owner.name or "") if owner else ""


@dataclass(frozen=True)
class OutputContract:
    """What the job needs to know of the contract to build, guard and describe the output.

    Everything callers need is here, so that no other module walks the ODCS model.
    """

    path: Path
    id: str
    version: str
    data_product_id: str | None
    schema_name: str
    spark_schema: T.StructType
    required_columns: tuple[str, ...]
    unique_columns: tuple[str, ...]
    rules: tuple[QualityRule, ...]
    table_description: str
    column_descriptions: dict[str, str]
    owner: str
    column_tags: dict[str, dict[str, str | None]]
    # Column lineage: each column's direct sources, and the raw columns every column depends on
    # (the keys, versions and join keys that decide which rows there are).
    column_sources: dict[str, ColumnSources]
    indirect_sources: tuple[tuple[str, str], ...]
    model: OpenDataContractStandard

    def schema_differences(self, actual: T.StructType) -> list[str]:
        """How `actual` differs from the contract's schema: names, order and types."""
        expected = self.spark_schema
        differences = []
        missing = [n for n in expected.names if n not in actual.names]
        extra = [n for n in actual.names if n not in expected.names]
        if missing:
            differences.append("missing columns: " + ", ".join(missing))
        if extra:
            differences.append("columns not in the contract: " + ", ".join(extra))
        if not missing and not extra and actual.names != expected.names:
            differences.append("column order differs from the contract: " + ", ".join(actual.names))
        actual_types = {f.name: f.dataType for f in actual.fields}
        for field in expected.fields:
            produced = actual_types.get(field.name)
            if produced is not None and produced != field.dataType:
                differences.append(
                    f"{field.name}: contract says {field.dataType.simpleString().upper()}, "
                    f"the build produces {produced.simpleString().upper()}"
                )
        return differences

    def for_server(self, server: str, location: tuple[str, str] | None = None) -> OpenDataContractStandard:
        """The contract as datacontract-cli tests it against `server`.

        `location` (catalog, schema) points a catalog server elsewhere, so that a development
        deployment, or a local output, tests its own table rather than production's. The
        contract itself is left as it is.
        """
        model = self.model.model_copy(deep=True)
        target = next((s for s in model.servers or [] if s.server == server), None)
        if target is None:
            raise ContractDefinitionError(f"data contract {self.path} has no server named {server!r}")
        if location is not None:
            target.catalog, target.schema_ = location
        return model


def default_contract_path() -> Path:
    """The contract shipped in the wheel, or the repository's copy in a checkout."""
    return _shipped(CONTRACT_FILE)


def provider_contract_path() -> Path:
    """The snapshot of the raw tables' provider contract, shipped like ours."""
    return _shipped(*PROVIDER_CONTRACT_FILE)


def _shipped(*parts: str) -> Path:
    packaged = resources.files("customer_activity").joinpath("datacontracts", *parts)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2].joinpath("datacontracts", *parts)


def _operator(quality: DataQuality, where: str) -> tuple[str, float | tuple[float, float]]:
    given = {name: getattr(quality, name) for name in OPERATORS if getattr(quality, name) is not None}
    if len(given) != 1:
        raise ContractDefinitionError(f"{where}: needs exactly one of {', '.join(OPERATORS)}")
    name, threshold = given.popitem()
    if name in _RANGES:
        return name, (float(threshold[0]), float(threshold[1]))
    return name, float(threshold)


def _rule(quality: DataQuality, schema_name: str, column: str | None) -> QualityRule:
    where = f"quality rule on {schema_name}.{column}" if column else f"quality rule on {schema_name}"
    comparison, threshold = _operator(quality, where)
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
    if not quality.id:
        raise ContractDefinitionError(
            f"{where}: needs an id, through which published test results name the rule ({quality.description!r})"
        )
    name = quality.description or quality.name or f"{metric} {comparison} {threshold}"
    return QualityRule(
        id=quality.id,
        name=name,
        column=column,
        metric=metric,
        query=query,
        operator=comparison,
        threshold=threshold,
        row_condition=row_condition(query),
    )


def _column_tags(prop: SchemaProperty) -> dict[str, str | None]:
    """A column's catalog tags: its classification as `classification`, its tags as key-only tags (None)."""
    tags: dict[str, str | None] = {"classification": prop.classification} if prop.classification else {}
    return tags | dict.fromkeys(prop.tags or [])


def _custom(properties: list[CustomProperty] | None, name: str) -> object:
    return next((p.value for p in properties or [] if p.property == name), None)


def _raw_column(table: str, column: str, where: str) -> tuple[str, str]:
    """A lineage source, which must be a column an input port reads."""
    if column not in (INPUT_PORTS[table].required_columns if table in INPUT_PORTS else ()):
        raise ContractDefinitionError(
            f"{where}: lineage source {table}.{column} is no column of an input port ({', '.join(INPUT_PORTS)})"
        )
    return table, column


def _column_sources(prop: SchemaProperty, where: str) -> ColumnSources:
    transformation = _custom(prop.customProperties, "transformationType") or "IDENTITY"
    if transformation not in TRANSFORMATIONS:
        raise ContractDefinitionError(
            f"{where}: transformationType {transformation!r} is none of {', '.join(TRANSFORMATIONS)}"
        )
    named = (text.partition(".") for text in prop.transformSourceObjects or [])
    columns = tuple(_raw_column(table, column, where) for table, _, column in named)
    return ColumnSources(columns, str(transformation))


def _indirect_sources(schema: SchemaObject, path: Path) -> tuple[tuple[str, str], ...]:
    value = _custom(schema.customProperties, "indirectSourceObjects") or {}
    if not isinstance(value, dict) or not all(isinstance(c, list) for c in value.values()):
        raise ContractDefinitionError(f"data contract {path}: indirectSourceObjects maps tables to lists of columns")
    where = f"data contract {path}: indirectSourceObjects"
    return tuple(_raw_column(str(table), str(column), where) for table, columns in value.items() for column in columns)


def _check_ids(path: Path, rules: list[QualityRule], model: OpenDataContractStandard) -> None:
    """Every SLA property has an id too, and no two rules or properties share one."""
    slas = model.slaProperties or []
    missing = [sla.property or "?" for sla in slas if not sla.id]
    if missing:
        raise ContractDefinitionError(
            f"data contract {path}: the SLA properties {', '.join(missing)} need an id, through which published "
            "test results name them"
        )
    ids = [rule.id for rule in rules] + [sla.id for sla in slas if sla.id]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ContractDefinitionError(f"data contract {path}: ids used more than once: {', '.join(repeated)}")


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
    # Imported here, not with the module: datacontract-cli takes a second to import, which a
    # command refused for its arguments should not wait for (the build reads the contract
    # while Spark starts).
    from datacontract.data_contract import DataContract  # noqa: PLC0415
    from datacontract.export.spark_exporter import to_pyspark_schema  # noqa: PLC0415

    lint = DataContract(data_contract_file=str(path)).lint()
    # Lint warnings (say, a rule datacontract-cli cannot test) are judged below by
    # what the pre-publish audit can check; only invalid ODCS stops here.
    checks = lint.checks or []
    failures = [f"{c.name}: {c.reason}" for c in checks if c.result in ("failed", "error")]
    if failures:
        raise ContractDefinitionError(f"data contract {path} is not valid ODCS: " + "; ".join(failures))
    for check in checks:
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
    if not model.id or not model.version:
        raise ContractDefinitionError(f"data contract {path} needs an id and a version")
    properties = {p.name: p for p in schema_obj.properties or [] if p.name}
    if len(properties) != len(schema_obj.properties or []):
        raise ContractDefinitionError(f"data contract {path}: every property of {OUTPUT_SCHEMA!r} needs a name")
    rules = [_rule(q, OUTPUT_SCHEMA, None) for q in schema_obj.quality or []]
    for name, prop in properties.items():
        rules.extend(_rule(q, OUTPUT_SCHEMA, name) for q in prop.quality or [])
    _check_ids(path, rules, model)
    return OutputContract(
        path=path,
        id=model.id,
        version=model.version,
        data_product_id=model.dataProduct,
        schema_name=OUTPUT_SCHEMA,
        spark_schema=spark_schema,
        required_columns=tuple(name for name, p in properties.items() if p.required),
        unique_columns=tuple(name for name, p in properties.items() if p.unique or p.primaryKey),
        rules=tuple(rules),
        table_description=_one_line(schema_obj.description or (model.description.purpose if model.description else "")),
        column_descriptions={name: _one_line(p.description) for name, p in properties.items() if p.description},
        owner=_owner(model.team),
        column_tags={name: tags for name, p in properties.items() if (tags := _column_tags(p))},
        column_sources={name: _column_sources(p, f"data contract {path}: {name}") for name, p in properties.items()},
        indirect_sources=_indirect_sources(schema_obj, path),
        model=model,
    )
