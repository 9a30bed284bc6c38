"""The dashboard and the freshness alert, offline: rendered from their sources, consistent, current."""

from __future__ import annotations

import json

import consumer_views
import pytest
import yaml

from customer_activity_testing import bundle_checks
from customer_activity_testing.paths import REPOSITORY


def test_the_committed_dashboard_and_alert_are_what_their_sources_render():
    for path, text in consumer_views.rendered().items():
        assert path.read_text() == text, f"{path.name} is out of date: run python3 dev.py consumer-views"
    assert consumer_views.main(["--check"]) == 0


def test_every_dataset_is_its_query_file_and_every_widget_reads_a_dataset():
    dashboard = json.loads(consumer_views.DASHBOARD.read_text())
    datasets = {d["name"]: "".join(d["queryLines"]) for d in dashboard["datasets"]}
    assert datasets == {name: consumer_views.query(name) for name in consumer_views.query_names()}
    assert set(datasets) == {"overview", "ramping_up", "gone_quiet", "platform_mix", "contract_coverage", "freshness"}
    read = set()
    for item in dashboard["pages"][0]["layout"]:
        for query in item["widget"].get("queries", []):
            assert query["query"]["datasetName"] in datasets
            read.add(query["query"]["datasetName"])
    assert read == set(datasets), "every dataset is shown somewhere"


def test_the_queries_read_only_the_output_port():
    for name in consumer_views.query_names():
        text = consumer_views.query(name)
        tables = {word.split()[0] for word in text.split("FROM ")[1:]}
        assert tables <= {"customer_activity", "("}, f"{name} reads {tables}"


def test_the_alert_threshold_is_the_contracts_freshness_sla(tmp_path):
    contract = yaml.safe_load((REPOSITORY / "datacontracts" / "customer_activity_v1.odcs.yaml").read_text())
    [freshness] = [sla for sla in contract["slaProperties"] if sla["property"] == "freshness"]
    resource = yaml.safe_load(consumer_views.ALERT.read_text())["resources"]["alerts"]["customer_activity_freshness"]
    assert freshness["unit"] == "h"
    assert resource["evaluation"]["threshold"]["value"]["double_value"] == float(freshness["value"])
    assert resource["evaluation"]["source"]["name"] == "hours_since_update"
    assert "FROM ${var.catalog}.${resources.schemas.output.name}.customer_activity\n" in resource["query_text"]

    # A contract that relaxes its SLA to two days moves the alert with it.
    freshness.update(value=2, unit="d")
    changed = tmp_path / "contract.yaml"
    changed.write_text(yaml.safe_dump(contract))
    moved = consumer_views.alert(changed)["resources"]["alerts"]["customer_activity_freshness"]
    assert moved["evaluation"]["threshold"]["value"]["double_value"] == 48.0


@pytest.mark.parametrize(
    ("sla", "message"),
    [
        (None, "has no freshness SLA"),
        ([{"property": "freshness", "value": 30, "unit": "min"}], "unit 'min' is not hours or days"),
    ],
)
def test_a_contract_without_a_usable_freshness_sla_is_named(tmp_path, sla, message):
    contract = tmp_path / "contract.yaml"
    contract.write_text(yaml.safe_dump({"slaProperties": sla}))
    with pytest.raises(ValueError, match=message):
        consumer_views.freshness_hours(contract)


def test_the_dashboard_and_the_alert_deploy_with_the_bundle_for_each_targets_table():
    bundle = bundle_checks.load(REPOSITORY)
    dashboard = bundle["resources"]["dashboards"]["customer_activity"]
    assert (REPOSITORY / "resources" / dashboard["file_path"]).resolve() == consumer_views.DASHBOARD
    assert (dashboard["dataset_catalog"], dashboard["dataset_schema"]) == (
        "${var.catalog}",
        "${resources.schemas.output.name}",
    )
    alert = bundle["resources"]["alerts"]["customer_activity_freshness"]
    assert alert["warehouse_id"] == dashboard["warehouse_id"] == "${var.warehouse_id}"
    assert alert["evaluation"]["notification"]["subscriptions"] == [{"user_email": "${var.notification_email}"}]
