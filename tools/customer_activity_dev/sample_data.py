"""A realistic, deterministic sample of the seven raw tables, written as Parquet.

It looks like what dlt extracts from the operational database: every version of
every entity, with the awkward cases the staging rules exist for: several versions
per entity, ties on `version` broken by `_dlt_load_id` or `_dlt_id`, NULL versions,
NULL keys, timestamps as typed values or ISO-8601 strings in several spellings,
malformed timestamps, children of unknown parents, contracts in every status.
The same seed, size and as-of date always give the same files.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from customer_activity.jobs.errors import EXIT_OK
from customer_activity.transforms.input_ports import INPUT_PORTS

PLATFORMS = ("databricks", "snowflake", "bigquery", "s3", "postgres")
CONTRACT_STATUSES = ("draft", "active", "active", "deprecated", "retired")
ROLES = ("owner", "member", "member", "member", "viewer")
PRODUCT_STATUSES = ("draft", "active", "active", "deprecated")
SPECIFICATIONS = ("odps", "dps", None)
ASSET_TYPES = ("databricks_table", "snowflake_view", "s3_bucket", "kafka_topic")
MALFORMED_TIMESTAMPS = ("not a date", "2024-13-45T99:00:00Z", "", "yesterday")


@dataclass
class _Table:
    """Rows of one raw table as columns, plus dlt's bookkeeping."""

    columns: dict[str, list[object]]
    types: dict[str, pa.DataType]
    rows: int = 0

    def append(self, **values: object) -> None:
        for name in self.columns:
            self.columns[name].append(values.get(name))
        self.rows += 1

    def to_arrow(self) -> pa.Table:
        return pa.table({name: pa.array(self.columns[name], type=self.types[name]) for name in self.columns})


def _table(spec: dict[str, pa.DataType]) -> _Table:
    return _Table(columns={name: [] for name in spec}, types=spec)


_STRING = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_VERSIONED = {"version": pa.int64(), "_dlt_load_id": _STRING, "_dlt_id": _STRING}


@dataclass
class _Generator:
    rng: random.Random
    as_of: date
    load_ids: list[str] = field(default_factory=list)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def instant(self, max_days_back: int) -> datetime:
        """A moment up to `max_days_back` days before the end of the as-of day."""
        end = datetime.combine(self.as_of, time.min, tzinfo=UTC) + timedelta(days=1)
        return end - timedelta(seconds=self.rng.randrange(1, max_days_back * 86400))

    def as_string(self, moment: datetime) -> str:
        """One of the ISO-8601 spellings dlt writes, or now and then something broken."""
        if self.rng.random() < 0.02:
            return self.rng.choice(MALFORMED_TIMESTAMPS)
        style = self.rng.randrange(3)
        if style == 0:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if style == 1:
            return moment.strftime("%Y-%m-%d %H:%M:%S")
        return (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")

    def versions(self) -> list[dict[str, object]]:
        """dlt bookkeeping for each stored version of one entity, oldest first.

        Now and then two rows share a version (a re-extraction) and only the load id
        or, within one load, only the row id tells them apart; rarely the version is NULL.
        """
        count = self.rng.choice((1, 1, 2, 2, 3))
        rows = []
        for number in range(1, count + 1):
            load = self.rng.randrange(len(self.load_ids) - 1)
            rows.append({"version": number, "_dlt_load_id": self.load_ids[load], "_dlt_id": self.uid()})
        roll = self.rng.random()
        if roll < 0.05:
            latest = dict(rows[-1], _dlt_load_id=self.load_ids[-1], _dlt_id=self.uid())
            rows.append(latest)
        elif roll < 0.08:
            rows.append(dict(rows[-1], _dlt_id=self.uid()))
        elif roll < 0.10:
            rows.insert(0, {"version": None, "_dlt_load_id": self.load_ids[-1], "_dlt_id": self.uid()})
        return rows


# Organisations generated before their rows are written out, one file per table: a large
# sample (tens of millions of rows) is generated in bounded memory.
CHUNK_ORGANIZATIONS = 10_000


def _tables() -> dict[str, _Table]:
    return {
        "organization": _table(
            {
                "organization_id": _STRING,
                "vanity_url": _STRING,
                "created_by": _STRING,
                "created_at": _STRING,
                **_VERSIONED,
            }
        ),
        "organization_member": _table(
            {
                "organization_member_id": _STRING,
                "organization_id": _STRING,
                "user_id": _STRING,
                "role": _STRING,
                "created_at": _STRING,
                **_VERSIONED,
            }
        ),
        "data_product": _table(
            {
                "data_product_id": _STRING,
                "organization_id": _STRING,
                "name": _STRING,
                "status": _STRING,
                "specification_type": _STRING,
                "created_at": _TS,
                "updated_at": _TS,
                **_VERSIONED,
            }
        ),
        "asset": _table(
            {
                "asset_id": _STRING,
                "organization_id": _STRING,
                "name": _STRING,
                "type": _STRING,
                "created_at": _TS,
                **_VERSIONED,
            }
        ),
        "output_port": _table(
            {
                "output_port_id": _STRING,
                "data_product_id": _STRING,
                "name": _STRING,
                "type": _STRING,
                "data_contract_id": _STRING,
                "created_at": _STRING,
                **_VERSIONED,
            }
        ),
        "data_contract": _table(
            {
                "data_contract_id": _STRING,
                "organization_id": _STRING,
                "status": _STRING,
                "created_at": _TS,
                **_VERSIONED,
            }
        ),
        "test_result": _table(
            {
                "test_result_id": _STRING,
                "data_contract_id": _STRING,
                "result": _STRING,
                "created_at": _TS,
                "_dlt_load_id": _STRING,
                "_dlt_id": _STRING,
            }
        ),
    }


def generate(
    directory: Path, organizations: int = 500, as_of: date | None = None, seed: int = 42, children: int = 1
) -> dict[str, int]:
    """Write the seven raw tables under `directory`; returns the rows per table.

    `children` rounds of members, contracts, data products and assets per organisation:
    a history of a larger platform. Up to CHUNK_ORGANIZATIONS organisations make one file
    per table; more make several, as several dlt loads do.
    """
    as_of = as_of or datetime.now(UTC).date()
    gen = _Generator(rng=random.Random(seed), as_of=as_of)
    base_load = 1_700_000_000
    gen.load_ids = [f"{base_load + day * 86400}.{gen.rng.randrange(10**6):06d}" for day in range(60)]
    users = [gen.uid() for _ in range(max(10, organizations * 4))]
    organization_ids = [gen.uid() for _ in range(organizations)]
    # Children of organisations that do not exist: they must never create output rows.
    orphan_parents = [gen.uid() for _ in range(max(1, organizations // 50))]

    # Files of an earlier sample here would be read with this one's.
    for stale in (file for table in INPUT_PORTS for file in (directory / table).glob("part-*.parquet")):
        stale.unlink()
    counts = dict.fromkeys(INPUT_PORTS, 0)
    starts = range(0, organizations, CHUNK_ORGANIZATIONS)
    for part, start in enumerate(starts):
        tables = _tables()
        for index, organization_id in enumerate(organization_ids[start : start + CHUNK_ORGANIZATIONS], start):
            _organization(gen, tables["organization"], organization_id, index, users)
            for _ in range(children):
                _members(gen, tables["organization_member"], organization_id, users)
                contracts = _contracts(gen, tables["data_contract"], organization_id)
                _products(gen, tables, organization_id, contracts)
                _assets(gen, tables["asset"], organization_id)
        if part == len(starts) - 1:
            for parent in orphan_parents:
                _members(gen, tables["organization_member"], parent, users)
                _assets(gen, tables["asset"], parent)
                _products(gen, tables, parent, _contracts(gen, tables["data_contract"], parent))
        _rows_without_keys(gen, tables)
        for name, table in tables.items():
            target = directory / name
            target.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.to_arrow(), target / f"part-{part:05d}.parquet")
            counts[name] += table.rows
    return counts


def _organization(gen: _Generator, table: _Table, organization_id: str, index: int, users: list[str]) -> None:
    created = gen.instant(900)
    # The e-mail address of one of the platform's users, as the operational database keeps it
    # (personal data); some people open several organisations.
    creator = f"user-{gen.rng.choice(users)[:8]}@customer.example"
    for number, bookkeeping in enumerate(gen.versions()):
        table.append(
            organization_id=organization_id,
            vanity_url=f"org-{index}-v{number}",
            created_by=creator,
            created_at=gen.as_string(created),
            **bookkeeping,
        )


def _members(gen: _Generator, table: _Table, organization_id: str, users: list[str]) -> None:
    # Skewed sizes: most customers are small, a few have many members.
    for _ in range(int(gen.rng.paretovariate(1.5) * 3) - 2):
        member_id = gen.uid()
        user_id = None if gen.rng.random() < 0.03 else gen.rng.choice(users)
        created = gen.instant(400)
        for bookkeeping in gen.versions():
            table.append(
                organization_member_id=member_id,
                organization_id=organization_id,
                user_id=user_id,
                role=gen.rng.choice(ROLES),
                created_at=gen.as_string(created),
                **bookkeeping,
            )


def _contracts(gen: _Generator, table: _Table, organization_id: str) -> list[str]:
    contracts = []
    for _ in range(gen.rng.randrange(0, 4)):
        contract_id = gen.uid()
        created = gen.instant(500)
        for bookkeeping in gen.versions():
            table.append(
                data_contract_id=contract_id,
                organization_id=organization_id,
                status=gen.rng.choice(CONTRACT_STATUSES),
                created_at=created,
                **bookkeeping,
            )
        contracts.append(contract_id)
    return contracts


def _products(gen: _Generator, tables: dict[str, _Table], organization_id: str, contracts: list[str]) -> None:
    platforms = gen.rng.sample(PLATFORMS, k=gen.rng.randrange(1, 3))
    for number in range(gen.rng.choice((0, 1, 2, 3, 3, 5, 8))):
        product_id = gen.uid()
        created = gen.instant(600)
        for bookkeeping in gen.versions():
            tables["data_product"].append(
                data_product_id=product_id,
                organization_id=organization_id,
                name=f"product-{number}",
                status=gen.rng.choice(PRODUCT_STATUSES),
                specification_type=gen.rng.choice(SPECIFICATIONS),
                created_at=created,
                updated_at=created + timedelta(days=gen.rng.randrange(0, 60)),
                **bookkeeping,
            )
        for _ in range(gen.rng.choice((0, 1, 1, 2, 3))):
            _port(gen, tables, product_id, platforms, contracts)


def _port(
    gen: _Generator, tables: dict[str, _Table], product_id: str, platforms: Sequence[str], contracts: list[str]
) -> None:
    port_id = gen.uid()
    roll = gen.rng.random()
    if contracts and roll < 0.7:
        contract_id = gen.rng.choice(contracts)
    elif roll < 0.8:
        contract_id = gen.uid()  # a contract the database does not know (yet)
    else:
        contract_id = None
    platform = None if gen.rng.random() < 0.05 else gen.rng.choice(platforms)
    created = gen.instant(500)
    for bookkeeping in gen.versions():
        tables["output_port"].append(
            output_port_id=port_id,
            data_product_id=product_id,
            name=f"port-{port_id[:8]}",
            type=platform,
            data_contract_id=contract_id,
            created_at=gen.as_string(created),
            **bookkeeping,
        )
    if contract_id is not None and gen.rng.random() < 0.5:
        for _ in range(gen.rng.randrange(1, 4)):
            tables["test_result"].append(
                test_result_id=gen.uid(),
                data_contract_id=contract_id,
                result=gen.rng.choice(("passed", "passed", "failed", "warning")),
                created_at=gen.instant(30),
                _dlt_load_id=gen.load_ids[-1],
                _dlt_id=gen.uid(),
            )


def _assets(gen: _Generator, table: _Table, organization_id: str) -> None:
    for number in range(gen.rng.choice((0, 0, 1, 3, 5, 12))):
        asset_id = gen.uid()
        created = gen.instant(700)
        for bookkeeping in gen.versions():
            table.append(
                asset_id=asset_id,
                organization_id=organization_id,
                name=f"asset-{number}",
                type=gen.rng.choice(ASSET_TYPES),
                created_at=created,
                **bookkeeping,
            )


def _rows_without_keys(gen: _Generator, tables: dict[str, _Table]) -> None:
    """A few rows per versioned table whose key is NULL: not entities, to be dropped."""
    # Only versioned tables drop rows without a key; test results keep them all.
    for name, port in INPUT_PORTS.items():
        if not port.versioned:
            continue
        key, table = port.key, tables[name]
        for _ in range(max(1, table.rows // 200)):
            row = {column: values[gen.rng.randrange(table.rows)] for column, values in table.columns.items()}
            row[key] = None
            row["_dlt_id"] = gen.uid()
            table.append(**row)


def write_sample(directory: Path, organizations: int, as_of: date | None, seed: int, children: int = 1) -> int:
    """The `generate` command: write the sample and say how many rows each table got."""
    for table, rows in generate(directory, organizations, as_of, seed, children).items():
        print(f"{table:<20} {rows:>9} rows")
    return EXIT_OK
