"""An independent, plain-Python reading of the specification, for comparison only.

It shares no code with the transforms and uses no Spark: raw tables are read with
pyarrow and every rule is written the obvious way, one row at a time. The end-to-end
tests compare the build's output against it on generated data.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow.parquet as pq

KEYS = {
    "organization": "organization_id",
    "organization_member": "organization_member_id",
    "data_product": "data_product_id",
    "asset": "asset_id",
    "output_port": "output_port_id",
    "data_contract": "data_contract_id",
}


def _timestamp(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(value: object) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


def _rank(row: dict[str, object]) -> tuple:
    version, load_id, dlt_id = row["version"], _number(row["_dlt_load_id"]), row["_dlt_id"]
    if isinstance(version, float) and math.isnan(version):  # NaN says no more than NULL
        version = None
    return (version is not None, version or 0, load_id is not None, load_id or 0, dlt_id is not None, dlt_id or "")


def _latest(rows: list[dict[str, object]], key: str) -> dict[str, dict[str, object]]:
    latest: dict[str, dict[str, object]] = {}
    for row in rows:
        if row[key] is None:
            continue
        current = latest.get(row[key])
        if current is None or _rank(row) > _rank(current):
            latest[row[key]] = row
    return latest


def _read(source: Path, table: str) -> list[dict[str, object]]:
    """Every file's rows; a column some files lack is None in their rows."""
    rows = [row for file in sorted((source / table).glob("*.parquet")) for row in pq.read_table(file).to_pylist()]
    columns = {column for row in rows for column in row}
    return [{column: row.get(column) for column in columns} for row in rows]


def customer_activity(source: Path, as_of: date) -> dict[str, dict[str, object]]:
    """The expected output rows, keyed by organization_id (without `updated_at`)."""
    start = datetime.combine(as_of, time.min, tzinfo=UTC) - timedelta(days=30)
    end = datetime.combine(as_of, time.min, tzinfo=UTC) + timedelta(days=1)

    def recent(moment: datetime | None) -> bool:
        return moment is not None and start <= moment < end

    latest = {table: _latest(_read(source, table), key) for table, key in KEYS.items()}
    test_results = _read(source, "test_result")
    tested = {r["data_contract_id"] for r in test_results if r["data_contract_id"] is not None}

    users, recent_users = defaultdict(set), defaultdict(set)
    signed_up = defaultdict(list)
    for member in latest["organization_member"].values():
        org, created = member["organization_id"], _timestamp(member["created_at"])
        if member["user_id"] is not None:
            users[org].add(member["user_id"])
            if recent(created):
                recent_users[org].add(member["user_id"])
        if created is not None:
            signed_up[org].append(created)

    products, recent_products, product_updates = defaultdict(int), defaultdict(int), defaultdict(list)
    for product in latest["data_product"].values():
        org = product["organization_id"]
        products[org] += 1
        recent_products[org] += recent(_timestamp(product["created_at"]))
        if _timestamp(product["updated_at"]) is not None:
            product_updates[org].append(_timestamp(product["updated_at"]))

    active = {cid for cid, c in latest["data_contract"].items() if c["status"] == "active"}
    ports, with_contract, with_tests = defaultdict(int), defaultdict(int), defaultdict(int)
    products_by_type: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for port in latest["output_port"].values():
        product = latest["data_product"].get(port["data_product_id"])
        if product is None:
            continue
        org = product["organization_id"]
        ports[org] += 1
        with_contract[org] += port["data_contract_id"] in active
        with_tests[org] += port["data_contract_id"] in tested
        if port["type"] is not None:
            products_by_type[org][port["type"]].add(port["data_product_id"])

    assets = defaultdict(int)
    for asset in latest["asset"].values():
        assets[asset["organization_id"]] += 1

    expected = {}
    for org_id, org in latest["organization"].items():
        votes = products_by_type.get(org_id, {})
        platform = min(votes, key=lambda t: (-len(votes[t]), t)) if votes else None
        expected[org_id] = {
            "organization_id": org_id,
            "organization_vanity_url": org["vanity_url"],
            "organization_created_by": org["created_by"],
            "organization_created_at": _timestamp(org["created_at"]),
            "users_total": len(users[org_id]),
            "users_added_30d": len(recent_users[org_id]),
            "users_last_signed_up_at": max(signed_up[org_id], default=None),
            "dataproducts_total": products[org_id],
            "dataproducts_added_30d": recent_products[org_id],
            "dataproducts_outputports_total": ports[org_id],
            "dataproducts_outputports_with_datacontract_percentage": 100.0 * with_contract[org_id] / ports[org_id]
            if ports[org_id]
            else 0.0,
            "dataproducts_outputports_with_testresults_percentage": 100.0 * with_tests[org_id] / ports[org_id]
            if ports[org_id]
            else 0.0,
            "dataproducts_last_updated_at": max(product_updates[org_id], default=None),
            "assets_total": assets[org_id],
            "data_platform": platform,
        }
    return expected
