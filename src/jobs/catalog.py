"""Unity Catalog names and the SQL that governs the published table.

Every name that reaches SQL comes through `identifier()` (validated, then quoted) and
every text through `string_literal()`. Nothing here runs SQL: the functions return
statements, so that they can be read and tested without a workspace; `publishing` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import types as T

from customer_activity.jobs.contract import OutputContract, QualityRule
from customer_activity.jobs.errors import ConfigurationError, ContractDefinitionError

# A subset of what Unity Catalog accepts, chosen so that a name never needs more
# than backticks: letters, digits and underscores, starting with a letter or an
# underscore, at most 255 characters (Unity Catalog's limit).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")

STAGING_PREFIX = "_customer_activity_staging_"
# A staging table's name: the prefix, then the run id, which starts with the run's UTC start.
_STAGED_RUN = re.compile(re.escape(STAGING_PREFIX) + r"(\d{8}t\d{6}z)_")
CONSTRAINT_PREFIX = "ca_"
# The column tags the contract names, as `column:tag` pairs: when a later contract drops one, the
# build removes it; tags no version of the contract named (a governance team's, automatic
# classification's) stay.
TAGS_PROPERTY = "datacontract.column_tags"
_CONSTRAINT_PROPERTY = "delta.constraints."


def identifier(kind: str, value: str) -> str:
    """`value` checked as a Unity Catalog name and quoted; `kind` names it in errors."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ConfigurationError(
            f"{kind} {value!r} is not a valid name: use letters, digits and underscores, "
            "starting with a letter or an underscore, at most 255 characters"
        )
    return f"`{value}`"


def string_literal(text: str) -> str:
    """A SQL string literal; Databricks SQL escapes with backslashes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class TableName:
    """A three-part Unity Catalog table name, validated when it is made."""

    catalog: str
    schema: str
    table: str

    def __post_init__(self) -> None:
        identifier("catalog", self.catalog)
        identifier("schema", self.schema)
        identifier("table", self.table)

    @property
    def quoted(self) -> str:
        return ".".join(f"`{part}`" for part in (self.catalog, self.schema, self.table))

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"


def staging_table(output: TableName, staging_schema: str, run_id: str) -> TableName:
    """Where a run writes its candidate: in a schema of its own, never the output's.

    Consumers may be granted the whole output schema, so a candidate beside the output
    would be visible to them before the audit passed it.
    """
    name = STAGING_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", run_id).lower()
    return TableName(output.catalog, staging_schema, name)


def staging_run_start(table: str) -> datetime | None:
    """When the run that staged `table` started (from its run id), or None if no run staged it."""
    match = _STAGED_RUN.match(table)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%dt%H%M%Sz").replace(tzinfo=UTC)
    except ValueError:  # the shape of a run id, not a real moment (month 13): not a run's
        return None


def create_schema(catalog: str, schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {identifier('catalog', catalog)}.{identifier('schema', schema)}"


def create_staging_table(table: TableName, schema: T.StructType) -> str:
    """An empty table for one run's candidate, which is read once, by the audit and the commit.

    Without per-file statistics: Delta would compute them for every column on writing,
    for data skipping that a table read whole never does.
    """
    columns = ", ".join(_column_definition(field, None) for field in schema.fields)
    return (
        f"CREATE TABLE {table.quoted} ({columns}) USING DELTA TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '0')"
    )


def _column_definition(field: T.StructField, description: str | None) -> str:
    parts = [identifier("column", field.name), field.dataType.simpleString().upper()]
    if not field.nullable:
        parts.append("NOT NULL")
    if description:
        parts.append("COMMENT " + string_literal(description))
    return " ".join(parts)


def table_properties(contract: OutputContract) -> dict[str, str]:
    """What a catalog reader needs to find the contract and the product behind the table."""
    return {
        "datacontract.id": contract.id,
        "datacontract.version": contract.version,
        "dataproduct.id": contract.data_product_id or "",
        "dataproduct.owner": contract.owner,
        TAGS_PROPERTY: ",".join(sorted(f"{c}:{tag}" for c, tags in contract.column_tags.items() for tag in tags)),
    }


def create_table(output: TableName, contract: OutputContract) -> str:
    """The output table as the contract defines it, created once; later runs keep it.

    Comments, NOT NULL and properties go in the creating commit. CHECK constraints do
    not: Databricks documents them only through `ALTER TABLE ... ADD CONSTRAINT`, and
    Delta refuses `delta.constraints.*` as a property set by hand, so `governance` adds
    them, before the first rows (see `publishing`).
    """
    descriptions = contract.column_descriptions
    columns = ",\n  ".join(_column_definition(f, descriptions.get(f.name)) for f in contract.spark_schema.fields)
    pairs = ",\n  ".join(f"{string_literal(k)} = {string_literal(v)}" for k, v in table_properties(contract).items())
    return (
        f"CREATE TABLE IF NOT EXISTS {output.quoted} (\n  {columns}\n)\nUSING DELTA\n"
        f"COMMENT {string_literal(contract.table_description)}\nTBLPROPERTIES (\n  {pairs}\n)"
    )


def replace_rows(output: TableName, staged: str, contract: OutputContract) -> str:
    """All rows replaced in one Delta transaction: readers see the old or the new table.

    `staged` is the quoted name of the table or view that holds the audited rows.
    """
    columns = ", ".join(identifier("column", name) for name in contract.spark_schema.names)
    return f"INSERT OVERWRITE TABLE {output.quoted} ({columns}) SELECT {columns} FROM {staged}"


def check_condition(rule: QualityRule) -> str | None:
    """The condition a CHECK constraint enforces for a row rule that must count 0 rows.

    Such a rule says "no row may match this condition"; a constraint says the same as
    "every row must satisfy its negation". Other rules stay query-time checks.
    """
    if rule.row_condition is None or rule.operator != "mustBe" or rule.threshold != 0:
        return None
    return f"NOT ({rule.row_condition})"


def constraint_name(rule: QualityRule) -> str:
    """The rule's stable id, as a constraint name (ids may hold dashes, names may not)."""
    return CONSTRAINT_PREFIX + re.sub(r"[^a-z0-9]+", "_", rule.id.lower()).strip("_")[:120]


@dataclass(frozen=True)
class TableState:
    """What a table says of itself now, as far as its governance goes."""

    comment: str | None
    properties: Mapping[str, str]
    column_comments: Mapping[str, str]
    nullable_columns: frozenset[str]

    @property
    def constraints(self) -> dict[str, str]:
        """CHECK constraints by name; Delta shows them as `delta.constraints.<name>` properties (read only)."""
        return {
            k.removeprefix(_CONSTRAINT_PROPERTY): v
            for k, v in self.properties.items()
            if k.startswith(_CONSTRAINT_PROPERTY)
        }


def _same_condition(left: str, right: str) -> bool:
    # Delta stores a constraint's condition as it printed it (`NOT ( n < 0 )`).
    return re.sub(r"\s+", "", left).lower() == re.sub(r"\s+", "", right).lower()


def check_constraints(contract: OutputContract) -> dict[str, str]:
    """The CHECK constraints the contract's row rules ask for, by constraint name."""
    constraints: dict[str, str] = {}
    for rule in contract.rules:
        condition = check_condition(rule)
        if condition is None:
            continue
        name = constraint_name(rule)
        if name in constraints:
            raise ContractDefinitionError(
                f"two quality rules of the contract would make the constraint {name}: give them ids that differ "
                "in more than case and punctuation"
            )
        constraints[name] = condition
    return constraints


def relaxations(output: TableName, contract: OutputContract, state: TableState) -> list[str]:
    """What must go before the new rows are written: constraints the contract dropped or
    changed, and NOT NULL on columns it now allows to be NULL.

    The old rows satisfy everything, so these never fail; leaving them for later would let
    a changed contract reject the audited rows.
    """
    table = output.quoted
    wanted = check_constraints(contract)
    statements = [
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {identifier('constraint', name)}"
        for name, condition in state.constraints.items()
        if (name in wanted and not _same_condition(condition, wanted[name]))
        or (name not in wanted and name.startswith(CONSTRAINT_PREFIX))
    ]
    required = set(contract.required_columns)
    statements.extend(
        f"ALTER TABLE {table} ALTER COLUMN {identifier('column', name)} DROP NOT NULL"
        for name in contract.spark_schema.names
        if name not in required and name not in state.nullable_columns
    )
    return statements


def governance(output: TableName, contract: OutputContract, state: TableState) -> list[str]:
    """The table made to say what the contract says: after an existing table's new rows, before a new table's first.

    Only what differs from the table's current `state` is changed, so that a run with an
    unchanged contract commits nothing but its rows. The rows have passed the audit, which
    checks the same rules, so the constraints added here hold for them. Comments and
    properties follow the contract; NOT NULL and CHECK constraints mirror its required
    columns and row rules (`relaxations` has removed the ones it no longer has). Column tags
    are apart (`column_tags`): not every catalog has them.
    """
    table = output.quoted
    statements = []
    if state.comment != contract.table_description:
        statements.append(f"COMMENT ON TABLE {table} IS {string_literal(contract.table_description)}")
    changed = {k: v for k, v in table_properties(contract).items() if state.properties.get(k) != v}
    if changed:
        pairs = ", ".join(f"{string_literal(k)} = {string_literal(v)}" for k, v in changed.items())
        statements.append(f"ALTER TABLE {table} SET TBLPROPERTIES ({pairs})")
    statements.extend(
        f"ALTER TABLE {table} ALTER COLUMN {identifier('column', name)} COMMENT {string_literal(description)}"
        for name, description in contract.column_descriptions.items()
        if state.column_comments.get(name) != description
    )
    statements.extend(
        f"ALTER TABLE {table} ALTER COLUMN {identifier('column', name)} SET NOT NULL"
        for name in contract.required_columns
        if name in state.nullable_columns
    )
    existing = state.constraints
    statements.extend(
        f"ALTER TABLE {table} ADD CONSTRAINT {identifier('constraint', name)} CHECK ({condition})"
        for name, condition in check_constraints(contract).items()
        if not (name in existing and _same_condition(existing[name], condition))
    )
    return statements


def read_column_tags(output: TableName) -> str:
    """The table's column tags as Unity Catalog lists them: column_name, tag_name, tag_value."""
    tags = f"{identifier('catalog', output.catalog)}.information_schema.column_tags"
    return (
        f"SELECT column_name, tag_name, tag_value FROM {tags} "
        # Unity Catalog keeps names in lower case.
        f"WHERE schema_name = {string_literal(output.schema.lower())} "
        f"AND table_name = {string_literal(output.table.lower())}"
    )


def _tag(name: str, value: str | None) -> str:
    # A tag without a value is a key-only tag.
    return string_literal(name) + ("" if value is None else f" = {string_literal(value)}")


def column_tags(
    output: TableName, contract: OutputContract, current: Mapping[str, Mapping[str, str | None]], state: TableState
) -> list[str]:
    """The columns tagged as the contract classifies and tags them, changing only what differs from `current`.

    A tag the contract no longer names is removed only if an earlier contract named it
    (TAGS_PROPERTY of the table's `state`, read before this run's governance changed it).
    Tags with values and key-only tags go in separate statements: Databricks does not take
    both in one list.
    """
    statements = []
    for column, wanted in contract.column_tags.items():
        present = current.get(column, {})
        missing = {k: v for k, v in wanted.items() if k not in present or (present[k] or None) != v}
        for key_only in (False, True):
            tags = [_tag(k, v) for k, v in missing.items() if (v is None) is key_only]
            if tags:
                statements.append(_alter_column(output, column, f"SET TAGS ({', '.join(tags)})"))
    dropped: dict[str, list[str]] = {}
    for pair in state.properties.get(TAGS_PROPERTY, "").split(","):
        column, _, tag = pair.partition(":")
        if tag not in contract.column_tags.get(column, {}) and tag in current.get(column, {}):
            dropped.setdefault(column, []).append(string_literal(tag))
    statements.extend(_alter_column(output, c, f"UNSET TAGS ({', '.join(tags)})") for c, tags in dropped.items())
    return statements


def _alter_column(output: TableName, column: str, change: str) -> str:
    return f"ALTER TABLE {output.quoted} ALTER COLUMN {identifier('column', column)} {change}"


def drop_table(table: TableName) -> str:
    return f"DROP TABLE IF EXISTS {table.quoted}"
