"""The bundle is checked offline: it loads, its references hold, it names the contract's table."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import pyspark
import pytest
import yaml

from customer_activity.jobs import cli
from customer_activity.jobs.change import ChangeLimits
from customer_activity.jobs.contract import default_contract_path, provider_contract_path
from customer_activity.jobs.publishing import OUTPUT_TABLE
from customer_activity_testing import bundle_checks as checks
from customer_activity_testing.paths import REPOSITORY, SCHEMAS

BUNDLE_SCHEMA = SCHEMAS / "databricks-bundle.schema.json"


@pytest.fixture(scope="module")
def bundle() -> dict:
    return checks.load(REPOSITORY)


@pytest.fixture
def broken(bundle) -> dict:
    """A private copy of the bundle for a test to break."""
    return copy.deepcopy(bundle)


def job(bundle: dict) -> dict:
    return bundle["resources"]["jobs"]["customer_activity"]


def task(bundle: dict, key: str) -> dict:
    return next(t for t in job(bundle)["tasks"] if t["task_key"] == key)


def references(bundle: dict) -> list[str]:
    return checks.reference_problems(bundle, checks.project_scripts(REPOSITORY), checks.wheel_name(REPOSITORY))


def test_every_job_loads_with_the_databricks_bundles_models(bundle):
    assert checks.jobs(bundle), "resources/ defines no job"
    assert checks.model_problems(bundle) == []


def test_a_misspelled_key_is_caught(broken):
    task(broken, "build")["python_wheel_task"]["entrypoint"] = task(broken, "build")["python_wheel_task"].pop(
        "entry_point"
    )
    [problem] = checks.model_problems(broken)
    assert "Unexpected field 'entrypoint'" in problem


def test_cross_references_hold(bundle):
    assert references(bundle) == []


def test_a_dangling_depends_on_is_caught(broken):
    task(broken, "contract_test")["depends_on"] = [{"task_key": "bulid"}]
    assert references(broken) == ["job customer_activity, task contract_test: depends_on names no task: bulid"]


def test_a_missing_entry_point_is_caught(broken):
    task(broken, "build")["python_wheel_task"]["entry_point"] = "customer-activity-build"
    assert references(broken) == [
        "job customer_activity, task build: entry_point customer-activity-build is not a [project.scripts] name"
    ]


def test_an_undefined_environment_and_a_foreign_package_are_caught(broken):
    task(broken, "build")["environment_key"] = "gpu"
    task(broken, "build")["python_wheel_task"]["package_name"] = "customer_activity_tools"
    assert references(broken) == [
        "job customer_activity, task build: environment_key gpu is not defined",
        "job customer_activity, task build: package_name customer_activity_tools is not the wheel customer_activity",
    ]


def test_variables_are_declared_used_and_given_a_value_per_target(bundle):
    assert checks.variable_problems(bundle) == []


def test_an_undeclared_or_unset_variable_is_caught(broken):
    task(broken, "build")["timeout_seconds"] = "${var.build_timeout}"
    del broken["targets"]["prod"]["variables"]["catalog"]
    assert checks.variable_problems(broken) == [
        "variable build_timeout is used but not declared",
        "target prod: variable catalog has no value",
    ]


def test_the_merged_bundle_validates_against_the_bundle_schema(bundle):
    validator = jsonschema.Draft202012Validator(json.loads(BUNDLE_SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(bundle)]
    assert errors == []


def test_the_bundle_schema_rejects_a_misspelled_key(broken):
    job(broken)["max_concurent_runs"] = 1
    validator = jsonschema.Draft202012Validator(json.loads(BUNDLE_SCHEMA.read_text()))
    assert any("max_concurent_runs" in e.message for e in validator.iter_errors(broken))


def test_prod_publishes_the_table_the_contracts_production_server_names(bundle):
    contract = yaml.safe_load(default_contract_path().read_text())
    [server] = [s for s in contract["servers"] if s["server"] == "production"]
    prod = bundle["targets"]["prod"]["variables"]
    assert (prod["catalog"], prod["output_schema"]) == (server["catalog"], server["schema"])
    [schema] = contract["schema"]
    assert schema["physicalName"] == OUTPUT_TABLE


def test_prod_reads_the_raw_tables_where_the_providers_contract_says_they_are(bundle):
    provider = yaml.safe_load(provider_contract_path().read_text())
    [server] = [s for s in provider["servers"] if s["server"] == "production"]
    prod = bundle["targets"]["prod"]
    source_schema = prod["variables"].get("source_schema") or bundle["variables"]["source_schema"]["default"]
    assert (prod["variables"]["catalog"], source_schema) == (server["catalog"], server["schema"])
    assert prod["workspace"]["host"] == server["host"]


def test_the_workflow_runs_daily_at_six_utc_with_one_run_at_a_time(bundle):
    settings = job(bundle)
    assert settings["schedule"]["quartz_cron_expression"] == "0 0 6 * * ?"
    assert settings["schedule"]["timezone_id"] == "UTC"
    assert settings["max_concurrent_runs"] == 1
    assert task(bundle, "contract_test")["depends_on"] == [{"task_key": "build"}]
    assert task(bundle, "build")["max_retries"] > 0
    assert all(t.get("timeout_seconds") for t in settings["tasks"])


def test_the_dev_target_is_the_default_and_runs_in_development_mode(bundle):
    assert bundle["targets"]["dev"]["default"] is True
    assert bundle["targets"]["dev"]["mode"] == "development"
    assert bundle["targets"]["prod"]["mode"] == "production"


def parameter(bundle: dict, name: str) -> str:
    return next(p["default"] for p in job(bundle)["parameters"] if p["name"] == name)


def test_the_job_reads_and_writes_the_schemas_the_bundle_deploys(bundle):
    schemas = bundle["resources"]["schemas"]
    assert checks.resource_problems(bundle) == []
    assert parameter(bundle, "output_schema") == "${resources.schemas.output.name}"
    assert parameter(bundle, "staging_schema") == "${resources.schemas.staging.name}"
    build = task(bundle, "build")["python_wheel_task"]["parameters"]
    assert build[build.index("--staging-schema") + 1] == "{{job.parameters.staging_schema}}"
    assert {s["catalog_name"] for s in schemas.values()} == {"${var.catalog}"}
    # The build's own default staging schema, for runs outside the bundle.
    assert schemas["staging"]["name"] == schemas["output"]["name"] + "_staging"
    # Developers may destroy their copies; production's schema holds the consumers' table.
    assert "lifecycle" not in schemas["output"]
    prod = bundle["targets"]["prod"]["resources"]["schemas"]["output"]
    assert prod["lifecycle"]["prevent_destroy"] is True


def test_a_reference_to_a_schema_the_bundle_does_not_deploy_is_caught(broken):
    job(broken)["parameters"][-1]["default"] = "${resources.schemas.stagign.name}"
    assert checks.resource_problems(broken) == [
        "${resources.schemas.stagign.name}: no resources.schemas.stagign in the bundle"
    ]


def test_the_daily_batch_runs_on_cost_efficient_serverless_compute(bundle):
    settings = job(bundle)
    assert settings["performance_target"] == "STANDARD"
    assert {t["environment_key"] for t in settings["tasks"]} == {"default"}
    assert not [t for t in settings["tasks"] if "job_cluster_key" in t or "existing_cluster_id" in t]


def test_the_deployed_wheel_is_built_with_a_version_of_its_own(bundle):
    [artifact] = bundle["artifacts"].values()
    assert artifact["type"] == "whl"
    assert artifact["dynamic_version"] is True
    # The newest wheel of a glob only from this CLI on; an older one would install every stale wheel.
    assert bundle["bundle"]["databricks_cli_version"] == ">= 0.256.0"
    environment = job(bundle)["environments"][0]["spec"]
    # The tasks install exactly what the artifact builds, from a folder no earlier scheme wrote to.
    assert artifact["build"].endswith("--wheel-dir dist/bundle .")
    assert artifact["files"] == [{"source": "dist/bundle/*.whl"}]
    assert environment["dependencies"] == ["../dist/bundle/*.whl"]


def test_the_build_sends_lineage_to_entropy_data_with_the_key_from_the_secret_scope(bundle):
    build = task(bundle, "build")["python_wheel_task"]["parameters"]
    test = task(bundle, "contract_test")["python_wheel_task"]["parameters"]
    assert build[build.index("--lineage") + 1] == "entropy-data"
    for parameters in (build, test):
        assert parameters[parameters.index("--secret-scope") + 1] == "${var.secret_scope}"
        assert parameters[parameters.index("--entropy-data-host") + 1] == "${var.entropy_data_host}"


def test_only_prod_reports_to_the_marketplace_under_the_products_name(bundle):
    # An empty scope means no key: lineage is off and test results stay unpublished, each with a line in the log.
    assert bundle["targets"]["dev"]["variables"]["secret_scope"] == ""
    assert "secret_scope" not in bundle["targets"]["prod"].get("variables", {})
    assert bundle["variables"]["secret_scope"]["default"] == "entropy-data"


def test_the_serverless_environment_runs_the_spark_that_the_tests_run(bundle):
    pinned = checks.pinned(REPOSITORY, "pyspark")
    assert pyspark.__version__ == pinned, "the environment is not the one requirements/constraints.txt pins"
    assert checks.environment_problems(bundle, pinned) == []


def test_an_environment_on_another_spark_is_named(broken):
    broken["variables"]["environment_version"]["default"] = "3"
    broken["targets"]["prod"].setdefault("variables", {})["environment_version"] = "9"
    assert checks.environment_problems(broken, "4.0.5") == [
        "default: serverless environment 3 runs Spark 3.5, the pins Spark 4.0",
        "dev: serverless environment 3 runs Spark 3.5, the pins Spark 4.0",
        "prod: serverless environment 9 has no known Spark version",
    ]


def build_arguments(bundle: dict, **given: str) -> list[str]:
    """The build task's command line as a run gets it: job parameters at their defaults, or as `given`."""
    values = {p["name"]: p["default"] for p in job(bundle)["parameters"]}
    values |= {"as_of": "", "change_limits": bundle["variables"]["change_limits"]["default"], **given}
    pattern = re.compile(r"\{\{job\.parameters\.(\w+)\}\}")
    return [
        pattern.sub(lambda m: values[m.group(1)], a) for a in task(bundle, "build")["python_wheel_task"]["parameters"]
    ]


def test_the_change_gate_is_set_per_target_and_overridden_per_run(bundle):
    scheduled = cli._parser().parse_args(build_arguments(bundle))
    assert scheduled.change_limits == ChangeLimits()
    assert scheduled.accept_change is None

    looser = cli._parser().parse_args(build_arguments(bundle, change_limits="rows=40"))
    assert looser.change_limits == ChangeLimits(rows=40.0)
    overridden = cli._parser().parse_args(build_arguments(bundle, accept_change="40 test accounts deleted"))
    assert overridden.accept_change == "40 test accounts deleted"


def test_prod_runs_as_the_data_products_service_principal_the_deploy_names(bundle):
    """The identity Entropy Data's connector grants the inputs to on an active access agreement."""
    assert bundle["targets"]["prod"]["run_as"] == {"service_principal_name": "${var.service_principal}"}
    assert "run_as" not in bundle["targets"]["dev"]
    deploy = yaml.safe_load((REPOSITORY / ".github/workflows/data-product.yml").read_text())["jobs"]["deploy"]
    assert deploy["env"]["BUNDLE_VAR_service_principal"] == deploy["env"]["DATABRICKS_CLIENT_ID"]


def grant_paths(value: object, path: str = "") -> list[str]:
    """Where a bundle (or any part of it, targets included) declares Unity Catalog grants."""
    if isinstance(value, dict):
        found = [f"{path}/grants"] if "grants" in value else []
        return found + [p for key, item in value.items() for p in grant_paths(item, f"{path}/{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in grant_paths(item, f"{path}/{index}")]
    return []


def test_the_bundle_grants_nothing_so_it_never_revokes_the_connectors_grants(bundle, broken):
    """A bundle's grants are authoritative: any there would remove the access agreements' groups."""
    assert grant_paths(bundle) == []
    broken["resources"]["schemas"]["output"]["grants"] = [{"principal": "customer_success", "privileges": ["SELECT"]}]
    assert grant_paths(broken) == ["/resources/schemas/output/grants"]
