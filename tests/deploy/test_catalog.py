"""The SQL that publishes and governs the Unity Catalog table, checked without a workspace."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlglot

from customer_activity.jobs import catalog, publishing
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.contract import load_contract, row_condition
from customer_activity.jobs.errors import ConfigurationError, ContractDefinitionError

OUTPUT = TableName("entropy_data_prod", "dp_entropydata_customer_activity_op_v1", "customer_activity")


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def ungoverned(contract) -> catalog.TableState:
    """A table with the contract's columns and nothing else: every statement is needed."""
    return catalog.TableState(
        comment=None, properties={}, column_comments={}, nullable_columns=frozenset(contract.spark_schema.names)
    )


def statements(contract) -> list[str]:
    staged = catalog.staging_table(OUTPUT, f"{OUTPUT.schema}_staging", "20261124T060000Z-1a2b3c4d")
    return [
        catalog.create_schema(staged.catalog, staged.schema),
        catalog.create_table(OUTPUT, contract),
        *catalog.governance(OUTPUT, contract, ungoverned(contract)),
        catalog.replace_rows(OUTPUT, staged.quoted, contract),
    ]


@pytest.mark.parametrize("name", ["entropy_data_prod", "_scratch", "Schema_2", "a" * 255])
def test_valid_names_are_quoted(name):
    assert catalog.identifier("schema", name) == f"`{name}`"


@pytest.mark.parametrize(
    "name",
    ["x; DROP TABLE y", "a.b", "", "2024_sales", "with space", "back`tick", "da-sh", "a" * 256, "ünïcode", None],
)
def test_names_that_could_change_the_sql_are_refused_with_their_kind(name):
    with pytest.raises(ConfigurationError, match=r"^catalog .* is not a valid name"):
        catalog.identifier("catalog", name)


def test_a_table_name_validates_every_part():
    with pytest.raises(ConfigurationError, match="schema 'dp; DROP TABLE x' is not a valid name"):
        TableName("main", "dp; DROP TABLE x", "customer_activity")
    assert TableName("a", "b", "c").quoted == "`a`.`b`.`c`"


def test_string_literals_escape_quotes_and_backslashes():
    assert catalog.string_literal("it's a \\ test") == "'it\\'s a \\\\ test'"


def test_every_statement_is_valid_databricks_sql(contract):
    for statement in statements(contract):
        parsed = sqlglot.parse_one(statement, read="databricks")
        assert not isinstance(parsed, sqlglot.exp.Command), f"not understood as SQL: {statement[:80]}"


def test_the_table_is_created_with_the_contracts_columns_types_and_not_nulls(contract):
    create = sqlglot.parse_one(catalog.create_table(OUTPUT, contract), read="databricks")
    columns = list(create.find_all(sqlglot.exp.ColumnDef))
    assert [c.name for c in columns] == contract.spark_schema.names
    assert [c.args["kind"].sql("databricks") for c in columns] == [
        f.dataType.simpleString().upper() for f in contract.spark_schema.fields
    ]
    not_null = [
        c.name for c in columns if any(isinstance(k.kind, sqlglot.exp.NotNullColumnConstraint) for k in c.constraints)
    ]
    assert not_null == list(contract.required_columns)
    assert "USING DELTA" in catalog.create_table(OUTPUT, contract)


def test_table_properties_name_the_contract_the_product_and_the_owner(contract):
    assert catalog.table_properties(contract) == {
        "datacontract.id": "entropydata-customer-activity-v1",
        "datacontract.version": "1.2.0",
        "dataproduct.id": "entropydata-customer-activity",
        "dataproduct.owner": "customer-success",
        catalog.TAGS_PROPERTY: "organization_created_by:classification,organization_created_by:pii",
    }
    assert "'datacontract.id' = 'entropydata-customer-activity-v1'" in catalog.create_table(OUTPUT, contract)


def test_every_column_gets_its_contract_description_as_comment(contract):
    comments = [
        s
        for s in catalog.governance(OUTPUT, contract, ungoverned(contract))
        if " ALTER COLUMN " in s and " COMMENT " in s
    ]
    assert len(comments) == len(contract.spark_schema.names)
    assert (
        "ALTER TABLE `entropy_data_prod`.`dp_entropydata_customer_activity_op_v1`.`customer_activity` "
        "ALTER COLUMN `assets_total` COMMENT 'Number of assets of the organisation.'"
    ) in comments


def test_row_rules_of_the_contract_become_check_constraints(contract):
    checks = [s for s in catalog.governance(OUTPUT, contract, ungoverned(contract)) if "ADD CONSTRAINT" in s]
    assert any(s.endswith("CHECK (NOT (users_added_30d > users_total))") for s in checks)
    assert any(s.endswith("CHECK (NOT (assets_total < 0))") for s in checks)
    row_rules = [r for r in contract.rules if r.metric == "sql"]
    assert len(checks) == len(row_rules)


def test_a_rule_that_is_not_a_plain_row_condition_stays_out_of_the_constraints(contract):
    [rule] = [r for r in contract.rules if r.name == "users_total is not negative."]
    assert catalog.check_condition(rule) == "NOT (users_total < 0)"
    queries = [
        "SELECT COUNT(*) FROM ${model} WHERE users_total > (SELECT 1)",
        "SELECT COUNT(*) FROM ${model} WHERE length(organization_id) = 0",
        "SELECT MAX(users_total) FROM ${model}",
        "SELECT COUNT(*) FROM ${model} WHERE organization_id = 'x'; DROP TABLE y",
    ]
    for query in queries:
        assert catalog.check_condition(replace(rule, query=query, row_condition=row_condition(query))) is None
    assert catalog.check_condition(replace(rule, operator="mustBeLessThan", threshold=5)) is None


@pytest.mark.parametrize(
    ("query", "condition"),
    [
        ("select count(*) from ${model} where users_total < 0;", "users_total < 0"),
        (
            "SELECT COUNT(*) FROM ${model} WHERE organization_id IS NOT NULL AND users_total BETWEEN 1 AND 2",
            "NOT organization_id IS NULL AND users_total BETWEEN 1 AND 2",
        ),
        (
            "SELECT COUNT(*) FROM ${model} WHERE -(assets_total + 1) * 2 > 0 OR name = 'x'",
            "-(assets_total + 1) * 2 > 0 OR name = 'x'",
        ),
        ("SELECT COUNT(*) FROM ${model} LIMIT 1", None),
        ("SELECT COUNT(*) FROM ${model} WHERE ${model}.users_total < 0", None),
        ("SELECT COUNT(*) FROM ${model} WHERE t.users_total < 0", None),
        ("SELECT COUNT(*) FROM other WHERE users_total < 0", None),
        ("SELECT COUNT(*) FROM ${model} WHERE users_total < ", None),
        (None, None),
    ],
)
def test_only_a_count_of_rows_under_a_plain_condition_is_a_row_condition(query, condition):
    assert row_condition(query) == condition


PERSONAL = "organization_created_by"


def tagged(contract, state=None, **current):
    return catalog.column_tags(OUTPUT, contract, current, state or ungoverned(contract))


def test_the_contracts_classification_and_tags_become_column_tags(contract):
    # Valued and key-only tags in separate statements, as Databricks takes them.
    assert tagged(contract) == [
        f"ALTER TABLE {OUTPUT.quoted} ALTER COLUMN `{PERSONAL}` SET TAGS ('classification' = 'personal')",
        f"ALTER TABLE {OUTPUT.quoted} ALTER COLUMN `{PERSONAL}` SET TAGS ('pii')",
    ]
    assert catalog.table_properties(contract)[catalog.TAGS_PROPERTY] == f"{PERSONAL}:classification,{PERSONAL}:pii"


def test_tags_already_there_are_not_set_again_and_a_changed_value_is(contract):
    assert tagged(contract, organization_created_by={"classification": "personal", "pii": ""}) == []
    assert tagged(contract, organization_created_by={"classification": "internal", "pii": None}) == [
        f"ALTER TABLE {OUTPUT.quoted} ALTER COLUMN `{PERSONAL}` SET TAGS ('classification' = 'personal')"
    ]


def test_a_tag_the_contract_dropped_is_removed_only_if_an_earlier_contract_named_it(contract):
    """Tags of others (a governance team, automatic classification) stay."""
    untagged = replace(contract, column_tags={})
    state = replace(ungoverned(contract), properties=catalog.table_properties(contract))
    current = {"classification": "personal", "pii": "", "pii_email": ""}
    assert tagged(untagged, state, organization_created_by=current) == [
        f"ALTER TABLE {OUTPUT.quoted} ALTER COLUMN `{PERSONAL}` UNSET TAGS ('classification', 'pii')"
    ]
    assert tagged(untagged, ungoverned(contract), organization_created_by=current) == []


def test_the_tags_are_looked_up_by_the_lower_case_names_unity_catalog_keeps():
    query = catalog.read_column_tags(TableName("Main", "Dp_Customer", "Customer_Activity"))
    assert query == (
        "SELECT column_name, tag_name, tag_value FROM `Main`.information_schema.column_tags "
        "WHERE schema_name = 'dp_customer' AND table_name = 'customer_activity'"
    )


def test_tag_values_and_column_names_stay_inside_their_quotes(contract):
    hostile = replace(contract, column_tags={PERSONAL: {"owner": "it's') ; DROP TABLE x; --"}})
    [statement] = tagged(hostile)
    assert statement.endswith("SET TAGS ('owner' = 'it\\'s\\') ; DROP TABLE x; --')")
    with pytest.raises(ConfigurationError, match="column"):
        tagged(replace(contract, column_tags={"x` SET TAGS": {"pii": None}}))


def test_descriptions_with_quotes_stay_inside_their_literal(contract):
    descriptions = {**contract.column_descriptions, "organization_id": "it's'; DROP TABLE x; --"}
    [comment] = [
        s
        for s in catalog.governance(OUTPUT, replace(contract, column_descriptions=descriptions), ungoverned(contract))
        if "`organization_id` COMMENT" in s
    ]
    assert comment.endswith("COMMENT 'it\\'s\\'; DROP TABLE x; --'")
    assert isinstance(sqlglot.parse_one(comment, read="databricks"), sqlglot.exp.Alter)


def test_rows_are_replaced_by_name_from_the_staged_table(contract):
    statement = statements(contract)[-1]
    assert statement.startswith(f"INSERT OVERWRITE TABLE {OUTPUT.quoted} (`organization_id`, ")
    assert statement.endswith(
        "FROM `entropy_data_prod`.`dp_entropydata_customer_activity_op_v1_staging`"
        ".`_customer_activity_staging_20261124t060000z_1a2b3c4d`"
    )


def state_after_creation(contract) -> catalog.TableState:
    """What a table created by `create_table` says of itself: everything but the CHECK constraints."""
    return catalog.TableState(
        comment=contract.table_description,
        properties=catalog.table_properties(contract),
        column_comments=dict(contract.column_descriptions),
        nullable_columns=frozenset(set(contract.spark_schema.names) - set(contract.required_columns)),
    )


def governed_state(contract) -> catalog.TableState:
    """What a table says of itself once `governance` has run: its CHECK constraints too."""
    state = state_after_creation(contract)
    constraints = {f"delta.constraints.{name}": c for name, c in catalog.check_constraints(contract).items()}
    return replace(state, properties=state.properties | constraints)


def test_a_new_table_gets_its_check_constraints_as_documented_not_as_properties(contract):
    statement = catalog.create_table(OUTPUT, contract)
    assert "delta.constraints." not in statement
    assert "`organization_id` STRING NOT NULL COMMENT" in statement
    constraints = catalog.check_constraints(contract)
    assert len(constraints) >= 5
    assert catalog.governance(OUTPUT, contract, state_after_creation(contract)) == [
        f"ALTER TABLE {OUTPUT.quoted} ADD CONSTRAINT `{name}` CHECK ({condition})"
        for name, condition in constraints.items()
    ]


def test_a_table_that_says_what_the_contract_says_needs_no_statement(contract):
    assert catalog.governance(OUTPUT, contract, governed_state(contract)) == []


def test_only_what_differs_is_changed(contract):
    state = governed_state(contract)
    constraints = catalog.check_constraints(contract)
    first = next(iter(constraints))
    changed = replace(
        state,
        properties={
            **{k: v for k, v in state.properties.items() if k != f"delta.constraints.{first}"},
            "datacontract.version": "0.9.0",
            # Delta prints a stored condition its own way; the same condition is no change.
            **{f"delta.constraints.{n}": c.replace("(", "( ") for n, c in list(constraints.items())[1:]},
            "delta.constraints.ca_a_rule_the_contract_dropped": "NOT (users_total > 5)",
            "delta.constraints.someone_elses": "users_total < 1000000",
        },
        nullable_columns=state.nullable_columns | {"users_total"},
        column_comments={**state.column_comments, "users_total": "an old description"},
    )
    table = OUTPUT.quoted
    assert catalog.relaxations(OUTPUT, contract, changed) == [
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS `ca_a_rule_the_contract_dropped`",
    ]
    assert catalog.governance(OUTPUT, contract, changed) == [
        f"ALTER TABLE {table} SET TBLPROPERTIES ('datacontract.version' = '{contract.version}')",
        f"ALTER TABLE {table} ALTER COLUMN `users_total` COMMENT "
        + catalog.string_literal(contract.column_descriptions["users_total"]),
        f"ALTER TABLE {table} ALTER COLUMN `users_total` SET NOT NULL",
        f"ALTER TABLE {table} ADD CONSTRAINT `{first}` CHECK ({constraints[first]})",
    ]


def test_a_column_the_contract_no_longer_requires_loses_not_null_before_the_rows(contract):
    state = governed_state(contract)
    optional = replace(contract, required_columns=tuple(c for c in contract.required_columns if c != "assets_total"))
    assert catalog.relaxations(OUTPUT, optional, state) == [
        f"ALTER TABLE {OUTPUT.quoted} ALTER COLUMN `assets_total` DROP NOT NULL"
    ]
    assert catalog.relaxations(OUTPUT, contract, state) == []


def test_a_constraint_whose_condition_changed_is_replaced(contract):
    state = governed_state(contract)
    first = next(iter(catalog.check_constraints(contract)))
    changed = replace(state, properties={**state.properties, f"delta.constraints.{first}": "NOT (users_total < 5)"})
    assert catalog.relaxations(OUTPUT, contract, changed) == [
        f"ALTER TABLE {OUTPUT.quoted} DROP CONSTRAINT IF EXISTS `{first}`"
    ]
    assert catalog.governance(OUTPUT, contract, changed) == [
        f"ALTER TABLE {OUTPUT.quoted} ADD CONSTRAINT `{first}` CHECK ({catalog.check_constraints(contract)[first]})",
    ]


class RecordingSession:
    """Stands in for a Databricks session: records SQL, reads back a given schema."""

    def __init__(self, schema):
        self.statements: list[str] = []
        self.read = self
        self.catalog = self
        self._schema = schema

    def tableExists(self, name: str) -> bool:  # noqa: N802 - Spark's Catalog API spells it so
        return True

    def sql(self, statement: str) -> None:
        self.statements.append(statement)

    def table(self, name: str) -> RecordingSession:
        return self

    @property
    def schema(self):
        return self._schema


def test_an_existing_table_with_another_schema_is_not_overwritten(contract):
    session = RecordingSession(contract.spark_schema[:-1])
    output = publishing.OutputLocation(table=OUTPUT)

    with pytest.raises(
        ContractDefinitionError, match=r"exists with a schema other than the contract's .*missing columns: updated_at"
    ):
        publishing.StagingArea(session, output, "run-1").publish(contract, publishing.ABSENT)

    assert not any(s.startswith("INSERT") for s in session.statements)
