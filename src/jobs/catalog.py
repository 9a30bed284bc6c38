"""Unity Catalog names and the SQL that governs the published table.

Every name that reaches SQL comes through `identifier()` (validated, then quoted) and
every text through `string_literal()`. Nothing here runs SQL: the functions return
statements, so that they can be read and tested without a workspace; `publishing` runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import types as T

from customer_activity.jobs.contract import OutputContract, QualityRule
from customer_activity.jobs.errors import ConfigurationError, ContractDefinitionError

# A subset of what Unity Catalog accepts, chosen so that a name never needs more
# than backticks: letters, digits and underscores, starting with a letter or an
# underscore, at most 255 characters (Unity Catalog's limit).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Principals (groups, users, service principals) may hold e-mail addresses,
# dashes, dots and spaces; they are quoted with backticks, which they may not hold.
_PRINCIPAL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+\- ]{0,254}")

STAGING_PREFIX = "_customer_activity_staging_"


def identifier(kind: str, value: str) -> str:
    """`value` checked as a Unity Catalog name and quoted; `kind` names it in errors."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ConfigurationError(
            f"{kind} {value!r} is not a valid name: use letters, digits and underscores, "
            "starting with a letter or an underscore, at most 255 characters"
        )
    return f"`{value}`"


def principal(value: str) -> str:
    if not _PRINCIPAL.fullmatch(value or ""):
        raise ConfigurationError(f"principal {value!r} is not a valid user, group or service principal name")
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

    @classmethod
    def parse(cls, name: str) -> TableName:
        parts = name.split(".")
        if len(parts) != 3:
            raise ConfigurationError(f"table name {name!r} must have three parts: catalog.schema.table")
        return cls(*parts)

    @property
    def quoted(self) -> str:
        return ".".join(f"`{part}`" for part in (self.catalog, self.schema, self.table))

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"

    def sibling(self, table: str) -> TableName:
        return TableName(self.catalog, self.schema, table)


def staging_table(output: TableName, run_id: str) -> TableName:
    """Where a run writes its candidate: beside the output, named after the run."""
    return output.sibling(STAGING_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", run_id).lower())


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
    }


def _properties_clause(contract: OutputContract) -> str:
    pairs = ", ".join(f"{string_literal(k)} = {string_literal(v)}" for k, v in table_properties(contract).items())
    return f"TBLPROPERTIES ({pairs})"


def create_table(output: TableName, contract: OutputContract) -> str:
    """The output table as the contract defines it, created once; later runs keep it."""
    descriptions = contract.column_descriptions
    columns = ",\n  ".join(_column_definition(f, descriptions.get(f.name)) for f in contract.spark_schema.fields)
    return (
        f"CREATE TABLE IF NOT EXISTS {output.quoted} (\n  {columns}\n)\nUSING DELTA\n"
        f"COMMENT {string_literal(contract.table_description)}\n{_properties_clause(contract)}"
    )


def replace_rows(output: TableName, staged: TableName, contract: OutputContract) -> str:
    """All rows replaced in one Delta transaction: readers see the old or the new table."""
    columns = ", ".join(identifier("column", name) for name in contract.spark_schema.names)
    return f"INSERT OVERWRITE TABLE {output.quoted} ({columns}) SELECT {columns} FROM {staged.quoted}"


def check_condition(rule: QualityRule) -> str | None:
    """The condition a CHECK constraint enforces for a row rule that must count 0 rows.

    Such a rule says "no row may match this condition"; a constraint says the same as
    "every row must satisfy its negation". Other rules stay query-time checks.
    """
    if rule.row_condition is None or rule.operator != "mustBe" or rule.threshold != 0:
        return None
    return f"NOT ({rule.row_condition})"


def constraint_name(rule: QualityRule) -> str:
    """A stable name from the rule's description, prefixed by its column if it lacks it."""
    text = rule.name.lower()
    if rule.column and not text.startswith(rule.column.lower()):
        text = f"{rule.column} {text}"
    return "ca_" + re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:120]


def governance(output: TableName, contract: OutputContract) -> list[str]:
    """Idempotent statements that make the table say what the contract says.

    Comments and properties are refreshed; NOT NULL and CHECK constraints mirror the
    contract's required columns and row rules; the contract's reader roles get SELECT.
    """
    table = output.quoted
    statements = [
        f"COMMENT ON TABLE {table} IS {string_literal(contract.table_description)}",
        f"ALTER TABLE {table} SET {_properties_clause(contract)}",
    ]
    statements.extend(
        f"ALTER TABLE {table} ALTER COLUMN {identifier('column', name)} COMMENT {string_literal(description)}"
        for name, description in contract.column_descriptions.items()
    )
    statements.extend(
        f"ALTER TABLE {table} ALTER COLUMN {identifier('column', name)} SET NOT NULL"
        for name in contract.required_columns
    )
    names: set[str] = set()
    for rule in contract.rules:
        condition = check_condition(rule)
        if condition is None:
            continue
        if constraint_name(rule) in names:
            raise ContractDefinitionError(
                f"two quality rules of the contract would make the constraint {constraint_name(rule)}: "
                "give them different descriptions"
            )
        names.add(constraint_name(rule))
        name = identifier("constraint", constraint_name(rule))
        statements.append(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
        statements.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})")
    statements.extend(f"GRANT SELECT ON TABLE {table} TO {principal(role)}" for role in contract.reader_roles)
    return statements


def drop_table(table: TableName) -> str:
    return f"DROP TABLE IF EXISTS {table.quoted}"
