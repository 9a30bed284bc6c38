"""How the build executes: the physical plan Spark runs, read after it ran.

Each input table is read once (the staging models are shared, never recomputed from
the source), there is no Cartesian product, and the organisation dimension meets
only per-organisation aggregates, without a shuffle added for the join.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import straightforward

from customer_activity.jobs import inputs, local_catalog
from customer_activity.jobs.build import stage_with_counts
from customer_activity.jobs.contract import load_contract
from customer_activity.transforms import output_ports, staging
from customer_activity.transforms.input_ports import INPUT_PORTS
from customer_activity_testing import plans
from customer_activity_testing.outputs import AS_OF

pytestmark = pytest.mark.e2e

# The organisation dimension's staging window: it arrives partitioned by organisation.
ORGANISATION_WINDOW = "windowspecdefinition(organization_id"


@pytest.fixture(scope="module")
def build_plan(spark, sample_source):
    raw = inputs.read_raw_tables(spark, local_catalog.mounted_source(spark, sample_source))
    staged, _ = stage_with_counts(raw)
    candidate = output_ports.customer_activity(staged, AS_OF, datetime.now(UTC), load_contract().spark_schema)
    return plans.executed_plan(candidate)


def test_the_build_reads_every_input_table_exactly_once(build_plan):
    assert plans.scanned_tables(build_plan) == dict.fromkeys(INPUT_PORTS, 1)


@pytest.fixture
def no_exchange_reuse(spark):
    """Spark may answer a repeated read from an identical exchange it already ran; whether an
    adaptive plan does depends on which of its stages finished first."""
    spark.conf.set("spark.sql.exchange.reuse", "false")
    yield
    spark.conf.unset("spark.sql.exchange.reuse")


def test_the_check_sees_the_straightforward_port_read_tables_more_than_once(spark, sample_source, no_exchange_reuse):
    """The same inspection on the dbt-style port, as written: its models read two tables repeatedly."""
    raw = inputs.read_raw_tables(spark, local_catalog.mounted_source(spark, sample_source))
    result = straightforward.customer_activity(spark, raw, AS_OF, datetime.now(UTC))
    scans = plans.scanned_tables(plans.executed_plan(result))
    assert (scans["data_product"], scans["output_port"]) == (3, 2)


def test_the_build_has_no_cartesian_product(build_plan):
    assert plans.joins(build_plan)
    assert not [
        join.name for join in plans.joins(build_plan) if join.name in ("CartesianProduct", "BroadcastNestedLoopJoin")
    ]


def test_the_organisation_dimension_meets_only_aggregates_and_nothing_is_shuffled_for_it(build_plan):
    """Child tables are aggregated per organisation before the join; the join shuffles nothing."""
    organisation_joins = [join for join in plans.joins(build_plan) if "organization_id" in plans.join_keys(join)]
    assert len(organisation_joins) == 4  # users, data products, output ports, assets
    assert plans.dimension_join_problems(build_plan, "organization_id", ORGANISATION_WINDOW) == []


def test_the_check_sees_memberships_joined_to_the_dimension_before_aggregating(spark, sample_source):
    """Joining the child rows first (and aggregating after) is what the check must catch."""
    raw = inputs.read_raw_tables(spark, local_catalog.mounted_source(spark, sample_source))
    organizations = staging.stage(raw["organization"], staging.STG_ORGANIZATIONS)
    members = staging.stage(raw["organization_member"], staging.STG_ORGANIZATION_MEMBERS)
    late = organizations.join(members, on="organization_id", how="left").groupBy("organization_id").count()
    problems = plans.dimension_join_problems(plans.executed_plan(late), "organization_id", ORGANISATION_WINDOW)
    assert any("windowspecdefinition(organization_member_id" in problem for problem in problems), problems
