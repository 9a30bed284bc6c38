"""Integration tests against a real workspace; skipped unless one is configured.

Needs DATABRICKS_HOST (with credentials databricks-sdk understands), a SQL warehouse in
DATABRICKS_WAREHOUSE_ID and a scratch schema the caller may create tables in, as
CUSTOMER_ACTIVITY_TEST_SCHEMA=catalog.schema. The test creates a table, governs it
as a build does (constraints and column tags too), checks what the catalog says, and drops it again.
"""

from __future__ import annotations

import os
import uuid

import pytest

from customer_activity.jobs import catalog
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.contract import load_contract

REQUIRED = ("DATABRICKS_HOST", "DATABRICKS_WAREHOUSE_ID", "CUSTOMER_ACTIVITY_TEST_SCHEMA")

pytestmark = pytest.mark.skipif(
    not all(os.environ.get(name) for name in REQUIRED),
    reason="no Databricks workspace configured (set " + ", ".join(REQUIRED) + ")",
)


@pytest.fixture
def workspace_sql():
    # Importing databricks-sdk takes about two seconds; only a configured workspace needs it.
    from databricks.sdk import WorkspaceClient  # noqa: PLC0415
    from databricks.sdk.service.sql import StatementState  # noqa: PLC0415

    client = WorkspaceClient()

    def run(statement: str) -> list[list[str]]:
        response = client.statement_execution.execute_statement(
            statement, os.environ["DATABRICKS_WAREHOUSE_ID"], wait_timeout="50s"
        )
        assert response.status.state == StatementState.SUCCEEDED, (statement[:200], response.status.error)
        return response.result.data_array or [] if response.result else []

    return run


def test_governance_statements_apply_to_a_real_table(workspace_sql):
    catalog_name, schema = os.environ["CUSTOMER_ACTIVITY_TEST_SCHEMA"].split(".")
    table = TableName(catalog_name, schema, f"customer_activity_it_{uuid.uuid4().hex[:8]}")
    contract = load_contract()
    try:
        workspace_sql(catalog.create_table(table, contract))
        # As created: the contract's comment and properties, NOT NULL where it requires a value.
        nullable = frozenset(contract.spark_schema.names) - set(contract.required_columns)
        state = catalog.TableState(contract.table_description, catalog.table_properties(contract), {}, nullable)
        for statement in catalog.governance(table, contract, state) + catalog.column_tags(table, contract, {}, state):
            workspace_sql(statement)
        properties = dict(workspace_sql(f"SHOW TBLPROPERTIES {table.quoted}"))
        assert properties["datacontract.id"] == contract.id
        constraints = [key for key in properties if key.startswith("delta.constraints.")]
        assert len(constraints) == sum(1 for rule in contract.rules if catalog.check_condition(rule))
        tags = {(column, tag) for column, tag, _ in workspace_sql(catalog.read_column_tags(table))}
        assert tags == {(column, tag) for column, wanted in contract.column_tags.items() for tag in wanted}
    finally:
        workspace_sql(catalog.drop_table(table))
