"""The consumers' view of the output port: an AI/BI dashboard and a freshness alert.

Every query lives in `queries/<name>.sql` and reads only the output port, by its
unqualified name `customer_activity`: the dashboard resource sets the catalog and
schema for its datasets (so dev and prod each read their own table), tests run the
same files against the local table, and the notebook charts them.

This script renders what the bundle deploys from those files and from the data
contract, so that neither repeats them:
- `customer_activity.lvdash.json`, the dashboard (datasets and widgets);
- `../customer_activity.alert.yml`, the alert on the contract's freshness SLA;
- `customer_activity_runs.lvdash.json`, the data engineers' dashboard over the run history
  (`runs/last_runs.sql`, reading `customer_activity_runs` of the product's internal schema,
  which consumers never see).

    python3 dev.py consumer-views          # write them
    python3 dev.py consumer-views --check  # fail if one is not what the sources give
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "queries"
DASHBOARD = HERE / "customer_activity.lvdash.json"
ALERT = HERE.parent / "customer_activity.alert.yml"
RUNS_QUERY = HERE / "runs" / "last_runs.sql"
RUNS_DASHBOARD = HERE / "customer_activity_runs.lvdash.json"
CONTRACT = HERE.parent.parent / "datacontracts" / "customer_activity_v1.odcs.yaml"
TABLE = "customer_activity"
# The alert runs on a SQL warehouse without a dashboard's default catalog and schema.
QUALIFIED_TABLE = "${var.catalog}.${resources.schemas.output.name}.customer_activity"
# Hours per unit of an ODCS SLA value.
_HOURS = {"h": 1, "hour": 1, "hours": 1, "d": 24, "day": 24, "days": 24}


def query(name: str) -> str:
    """The text of `queries/<name>.sql`."""
    path = QUERIES / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no query {name}: {path} does not exist")
    return path.read_text()


def query_names() -> list[str]:
    return sorted(path.stem for path in QUERIES.glob("*.sql"))


def freshness_hours(contract_path: Path = CONTRACT) -> float:
    """The contract's freshness SLA in hours (`slaProperties`, property `freshness`)."""
    contract = yaml.safe_load(contract_path.read_text())
    for sla in contract.get("slaProperties") or []:
        if sla.get("property") == "freshness":
            unit = str(sla.get("unit", "")).lower()
            if unit not in _HOURS:
                raise ValueError(f"{contract_path}: the freshness SLA's unit {sla.get('unit')!r} is not hours or days")
            return float(sla["value"]) * _HOURS[unit]
    raise ValueError(f"{contract_path} has no freshness SLA (slaProperties: property freshness)")


def _field(name: str) -> dict[str, str]:
    return {"name": name, "expression": f"`{name}`"}


def _widget(name: str, dataset: str, fields: list[str], spec: dict[str, Any], position: tuple[int, int, int, int]):
    x, y, width, height = position
    return {
        "widget": {
            "name": name,
            "queries": [
                {
                    "name": "main_query",
                    "query": {"datasetName": dataset, "fields": [_field(f) for f in fields], "disaggregated": True},
                }
            ],
            "spec": spec,
        },
        "position": {"x": x, "y": y, "width": width, "height": height},
    }


def _frame(title: str, description: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"showTitle": True, "title": title}
    if description:
        frame["showDescription"] = True
        frame["description"] = description
    return frame


def _counter(name: str, dataset: str, field: str, title: str, position: tuple[int, int, int, int]):
    spec = {
        "version": 2,
        "widgetType": "counter",
        "encodings": {"value": {"fieldName": field, "displayName": title}},
        "frame": _frame(title),
    }
    return _widget(name, dataset, [field], spec, position)


def _table(
    name: str, dataset: str, columns: list[str], title: str, description: str, position: tuple[int, int, int, int]
):
    spec = {
        "version": 1,
        "widgetType": "table",
        "encodings": {"columns": [{"fieldName": c, "displayName": c} for c in columns]},
        "frame": _frame(title, description),
    }
    return _widget(name, dataset, columns, spec, position)


def _bar(name: str, dataset: str, x: str, y: str, title: str, position, color: str | None = None):
    encodings: dict[str, Any] = {
        "x": {"fieldName": x, "scale": {"type": "categorical"}, "displayName": x},
        "y": {"fieldName": y, "scale": {"type": "quantitative"}, "displayName": y},
    }
    fields = [x, y]
    if color:
        encodings["color"] = {"fieldName": color, "scale": {"type": "categorical"}, "displayName": color}
        fields.append(color)
    spec = {"version": 3, "widgetType": "bar", "encodings": encodings, "frame": _frame(title)}
    return _widget(name, dataset, fields, spec, position)


def _columns(text: str) -> list[str]:
    """The output columns of a query, as its SELECT list names them (`... AS name` or a bare column)."""
    select = text.split("SELECT", 1)[1].split("\nFROM", 1)[0]
    columns = []
    for line in select.splitlines():
        item = line.strip().rstrip(",")
        if not item or item.startswith("--"):
            continue
        columns.append(item.rsplit(" AS ", 1)[-1].strip())
    return columns


def dashboard() -> dict[str, Any]:
    """The Lakeview dashboard: one dataset per query file, one page of widgets over them."""
    datasets = [
        {"name": name, "displayName": name.replace("_", " "), "queryLines": query(name).splitlines(keepends=True)}
        for name in query_names()
    ]
    counters = [
        ("customers", "Customers"),
        ("users", "Users"),
        ("data_products", "Data products"),
        ("output_ports", "Output ports"),
        ("assets", "Assets"),
        ("customers_active_30d", "Customers active in 30 days"),
    ]
    layout = [
        {
            "widget": {
                "name": "title",
                "multilineTextboxSpec": {
                    "lines": [
                        "# Customer Activity\n",
                        "One row per customer organisation, rebuilt daily from the output port "
                        "`customer_activity` (data contract entropydata-customer-activity-v1).",
                    ]
                },
            },
            "position": {"x": 0, "y": 0, "width": 6, "height": 2},
        },
        *[
            _counter(f"overview_{field}", "overview", field, title, (index, 2, 1, 2))
            for index, (field, title) in enumerate(counters)
        ],
        _counter("freshness_hours", "freshness", "hours_since_update", "Hours since the last build", (0, 4, 3, 2)),
        # A counter shows numbers only: the timestamp goes in a one-row table.
        _table(
            "freshness_last",
            "freshness",
            ["last_updated_at"],
            "Last built at (UTC)",
            f"The contract promises at most {freshness_hours():g} hours.",
            (3, 4, 3, 2),
        ),
        _table(
            "ramping_up",
            "ramping_up",
            _columns(query("ramping_up")),
            "Ramping up",
            "Users or data products added in the last 30 days, and their share of the totals.",
            (0, 6, 6, 8),
        ),
        _table(
            "gone_quiet",
            "gone_quiet",
            _columns(query("gone_quiet")),
            "Gone quiet",
            "Nothing added in 30 days; data products unchanged for over 90 days, or none at all.",
            (0, 14, 6, 8),
        ),
        _bar("platform_mix", "platform_mix", "data_platform", "customers", "Main data platform", (0, 22, 3, 6)),
        _bar(
            "contract_coverage",
            "contract_coverage",
            "band",
            "customers",
            "Output ports with data contracts and test results",
            (3, 22, 3, 6),
            color="coverage",
        ),
    ]
    return {
        "datasets": datasets,
        "pages": [
            {
                "name": "customer_activity",
                "displayName": "Customer activity",
                "layout": layout,
                "pageType": "PAGE_TYPE_CANVAS",
            }
        ],
    }


def runs_dashboard() -> dict[str, Any]:
    """The data engineers' dashboard: the last builds from the run history."""
    text = RUNS_QUERY.read_text()
    layout = [
        {
            "widget": {
                "name": "title",
                "multilineTextboxSpec": {
                    "lines": [
                        "# Customer Activity: runs\n",
                        "Every build of the output port, from the run history `customer_activity_runs` "
                        "in the product's internal schema.",
                    ]
                },
            },
            "position": {"x": 0, "y": 0, "width": 6, "height": 2},
        },
        _table(
            "last_runs",
            "last_runs",
            _columns(text),
            "Last builds",
            "Refused: the change gate stopped a candidate that met the contract; failed: see error.",
            (0, 2, 6, 10),
        ),
        _bar("durations", "last_runs", "started_at", "duration_seconds", "Build duration (seconds)", (0, 12, 6, 6)),
    ]
    return {
        "datasets": [{"name": "last_runs", "displayName": "last runs", "queryLines": text.splitlines(keepends=True)}],
        "pages": [{"name": "runs", "displayName": "Runs", "layout": layout, "pageType": "PAGE_TYPE_CANVAS"}],
    }


def alert(contract_path: Path = CONTRACT) -> dict[str, Any]:
    """The bundle resource of the freshness alert: the freshness query against the contract's SLA."""
    hours = freshness_hours(contract_path)
    text = query("freshness")
    if f"FROM {TABLE}\n" not in text:
        raise ValueError(f"queries/freshness.sql must read FROM {TABLE}")
    return {
        "resources": {
            "alerts": {
                "customer_activity_freshness": {
                    "display_name": "Customer Activity: table older than its freshness SLA",
                    "custom_summary": f"customer_activity was last built more than {hours:g} hours ago",
                    "custom_description": (
                        "The data contract promises an updated_at at most "
                        f"{hours:g} hours old. Check the customer_activity job's latest runs."
                    ),
                    "query_text": text.replace(f"FROM {TABLE}\n", f"FROM {QUALIFIED_TABLE}\n"),
                    "warehouse_id": "${var.warehouse_id}",
                    "evaluation": {
                        "source": {"name": "hours_since_update", "display": "hours since the last build"},
                        "comparison_operator": "GREATER_THAN",
                        "threshold": {"value": {"double_value": hours}},
                        # No row or a NULL means no table to read: that is stale too.
                        "empty_result_state": "TRIGGERED",
                        "notification": {
                            "notify_on_ok": True,
                            "retrigger_seconds": 86400,
                            "subscriptions": [{"user_email": "${var.notification_email}"}],
                        },
                    },
                    "schedule": {
                        "quartz_cron_schedule": "0 0 * * * ?",
                        "timezone_id": "UTC",
                        "pause_status": "UNPAUSED",
                    },
                }
            }
        }
    }


_ALERT_HEADER = (
    "# Generated by `python3 dev.py consumer-views` from resources/dashboard/queries/freshness.sql\n"
    "# and the data contract's freshness SLA: edit those, then run it again, never this file.\n"
)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the query) as literal blocks, readable in review."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def rendered() -> dict[Path, str]:
    """Every generated file and the text it should hold."""
    return {
        DASHBOARD: json.dumps(dashboard(), indent=2) + "\n",
        ALERT: _ALERT_HEADER + yaml.dump(alert(), Dumper=_Dumper, sort_keys=False, width=120),
        RUNS_DASHBOARD: json.dumps(runs_dashboard(), indent=2) + "\n",
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path.relative_to(HERE.parent.parent))
        else:
            path.write_text(text)
            print(f"consumer-views: wrote {path.relative_to(HERE.parent.parent)}")
    if stale:
        print(f"consumer-views: out of date: {', '.join(map(str, stale))}; run python3 dev.py consumer-views")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
