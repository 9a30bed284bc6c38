"""The change gate: a candidate that differs too much from the published table is not published.

A partial upstream load (half the organisations extracted, a filter gone wrong) yields a
table that meets every rule of the contract and is still wrong. Before publishing, the
audited candidate is compared with the version published when the build started: the
organisations it no longer has, its row count, and the product's main totals. Where a
figure moves more than its limit, nothing is published. A person who has looked at the
change (the source team confirms the deletions) builds once with an override, which the
run report records. The first build of a table has nothing to compare with and passes.

The figures are one aggregation over the published version joined with the candidate on
the key (a few columns of each), which the build runs beside the audit's own queries. The
gate compares with the table itself, not with the run history's last run: the organisations
that are gone need the published keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_activity.jobs.audit import aggregate
from customer_activity.jobs.errors import ChangeRefusedError, ConfigurationError

KEY = "organization_id"
# The totals a customer-success team reads first (the dashboard's overview).
TOTALS = ("users_total", "dataproducts_total", "dataproducts_outputports_total", "assets_total")


@dataclass(frozen=True)
class ChangeLimits:
    """How far, in percent of the published figure, a daily build may move each figure."""

    # Organisations are rarely deleted: a few percent gone in a day is an upstream problem.
    organizations_gone: float = 5.0
    # Either way: a table twice as large overnight is as suspect as one half as large.
    rows: float = 20.0
    totals: float = 25.0

    @classmethod
    def parse(cls, text: str) -> ChangeLimits:
        """`name=percent` pairs, comma-separated (`rows=30,totals=40`); the others keep their defaults."""
        names = [f.name for f in fields(cls)]
        values: dict[str, float] = {}
        for pair in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = pair.partition("=")
            name = name.strip()
            if name not in names:
                raise ConfigurationError(
                    f"unknown change limit {name!r} in {text!r}: the limits are {', '.join(names)}"
                )
            try:
                values[name] = float(value.strip().removesuffix("%"))
            except ValueError:
                raise ConfigurationError(f"the change limit {name} needs a percentage, got {value.strip()!r}") from None
            if not 0 <= values[name] < float("inf"):
                raise ConfigurationError(f"the change limit {name} must be a percentage of 0 or more, got {value!r}")
        return cls(**values)


@dataclass(frozen=True)
class Figure:
    """One figure of the candidate against the published table.

    `value` is the candidate's figure; for organizations_gone, how many of the published
    organisations it lacks. `percent` is of the published figure (None where that is 0).
    """

    name: str
    published: int
    value: int
    percent: float | None
    limit_percent: float

    @property
    def exceeded(self) -> bool:
        return self.percent is not None and abs(self.percent) > self.limit_percent

    def describe(self) -> str:
        if self.name == "organizations_gone":  # a share, one way
            share = "n/a" if self.percent is None else f"{self.percent:.1f} %"
            return f"organisations gone: {self.value} of {self.published} ({share}), limit {self.limit_percent:g} %"
        change = "n/a" if self.percent is None else f"{self.percent:+.1f} %"
        return f"{self.name}: {self.published} -> {self.value} ({change}), limit ±{self.limit_percent:g} %"


@dataclass
class Change:
    """The candidate against the published version `compared_with` (None: nothing published yet)."""

    compared_with: int | None
    figures: list[Figure] = field(default_factory=list)
    # Why a person let this change through: the override's reason, as given.
    accepted: str | None = None

    @property
    def exceeded(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.exceeded]

    def summary(self) -> str:
        if self.compared_with is None:
            return "change: nothing published yet to compare with"
        lines = [f"change against version {self.compared_with}:", *(f"    {f.describe()}" for f in self.figures)]
        if self.accepted is not None:
            lines.append(f"    limits overridden: {self.accepted}")
        return "\n".join(lines)

    def refusal(self) -> ChangeRefusedError:
        return ChangeRefusedError(
            f"the candidate differs from the published table (version {self.compared_with}) more than the "
            "change limits allow; the published output was left as it was:\n"
            + "\n".join(f"  - {figure.describe()}" for figure in self.exceeded)
            + "\nIf the change is right (the source confirms it), build once with --accept-change 'why' "
            "(the job parameter accept_change); --change-limits sets other limits."
        )


def _percent(published: int, candidate: int) -> float | None:
    return None if published == 0 else round(100 * (candidate - published) / published, 2)


def compare(candidate: DataFrame, published: DataFrame | None, version: int, limits: ChangeLimits) -> Change:
    """The candidate's figures against those of `published`, the table at Delta version `version`.

    One query over both, joined on the key: the candidate's key and totals columns, and the
    published ones, read once each (on Spark Connect too, where nothing is observed).
    `published` None, or without the columns, is nothing to compare with.
    """
    needed = [KEY, *TOTALS]
    if published is None or not all(set(needed) <= set(frame.columns) for frame in (candidate, published)):
        return Change(compared_with=None)
    mine = candidate.select(*(F.col(c).alias(f"new_{c}") for c in needed))
    joined = published.select(*needed).join(mine, F.col(KEY) == F.col(f"new_{KEY}"), "full_outer")
    figures = aggregate(
        joined,
        [
            F.count(F.col(KEY)).alias("rows"),
            F.count(F.col(f"new_{KEY}")).alias("new_rows"),
            F.count_if(F.col(KEY).isNotNull() & F.col(f"new_{KEY}").isNull()).alias("gone"),
            *(F.sum(F.col(c)).alias(c) for c in TOTALS),
            *(F.sum(F.col(f"new_{c}")).alias(f"new_{c}") for c in TOTALS),
        ],
    )
    value = {name: int(figure or 0) for name, figure in figures.items()}
    rows, gone = value["rows"], value["gone"]
    return Change(
        compared_with=version,
        figures=[
            Figure(
                "organizations_gone",
                rows,
                gone,
                None if rows == 0 else round(100 * gone / rows, 2),
                float(limits.organizations_gone),
            ),
            *(
                Figure(
                    name, value[name], value[f"new_{name}"], _percent(value[name], value[f"new_{name}"]), float(limit)
                )
                for name, limit in [("rows", limits.rows), *((total, limits.totals) for total in TOTALS)]
            ),
        ],
    )
