"""The change gate: a candidate that differs too much from the published table is not published.

A partial upstream load (half the organisations extracted, a filter gone wrong) yields a
table that meets every rule of the contract and is still wrong. Before publishing, the
audited candidate is compared with the version published when the build started: the
organisations it no longer has, its row count, and the product's main totals. Where a
figure moves more than its limit, nothing is published. A person who has looked at the
change (the source team confirms the deletions) builds once with an override, which the
run report records. The first build of a table has nothing to compare with and passes.

The candidate's figures are observed as it is written (with the audit's); the published
side is one aggregation over the published version joined with the candidate's keys, which
the build runs beside the audit's own queries. The gate compares with the table itself, not
with the run history's last run: the organisations that are gone need the published keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from customer_activity.jobs.audit import aggregate
from customer_activity.jobs.catalog import TableName
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
        percent = "n/a" if self.percent is None else f"{self.percent:+.1f} %"
        if self.name == "organizations_gone":
            share = percent.lstrip("+")
            return f"organisations gone: {self.value} of {self.published} ({share}), limit {self.limit_percent:g} %"
        return f"{self.name}: {self.published} -> {self.value} ({percent}), limit ±{self.limit_percent:g} %"


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


def candidate_metrics() -> list[Column]:
    """What the gate needs of the candidate, observed as the build writes it."""
    return [F.sum(F.col(total)).alias(f"sum:{total}") for total in TOTALS]


def _percent(published: int, candidate: int) -> float | None:
    return None if published == 0 else round(100 * (candidate - published) / published, 2)


def compare(
    spark: SparkSession,
    table: TableName,
    version: int,
    candidate: DataFrame,
    observed: Mapping[str, float] | None,
    limits: ChangeLimits,
) -> Change:
    """The candidate's figures against those of `table` at `version` (its Delta version, or < 0: none)."""
    if version < 0:
        return Change(compared_with=None)
    published = spark.sql(f"SELECT * FROM {table.quoted} VERSION AS OF {int(version)}")
    if not {KEY, *TOTALS} <= set(published.columns):
        # A table of another schema: publishing refuses it and says why; there is nothing to compare.
        return Change(compared_with=None)
    keys = candidate.select(F.col(KEY).alias("_candidate_key"))
    # Candidate keys are unique (the audit has passed it): the join keeps the published rows.
    joined = published.join(keys, published[KEY] == keys["_candidate_key"], "left")
    row = aggregate(
        joined,
        [
            F.count(F.lit(1)).alias("rows"),
            F.count_if(F.col("_candidate_key").isNull()).alias("gone"),
            *(F.sum(F.col(total)).alias(total) for total in TOTALS),
        ],
    )
    # Observed as the build wrote the candidate; aggregated here only where Spark observed nothing.
    if observed is not None and all(f"sum:{total}" in observed for total in TOTALS):
        mine = dict(observed)
    else:
        mine = aggregate(candidate, [F.count(F.lit(1)).alias("rows"), *candidate_metrics()])
    before = {name: int(row[name] or 0) for name in ("rows", "gone", *TOTALS)}
    rows = int(mine["rows"])
    gone = None if before["rows"] == 0 else round(100 * before["gone"] / before["rows"], 2)
    figures = [
        Figure("organizations_gone", before["rows"], before["gone"], gone, limits.organizations_gone),
        Figure("rows", before["rows"], rows, _percent(before["rows"], rows), limits.rows),
    ]
    for total in TOTALS:
        after = int(mine[f"sum:{total}"] or 0)
        figures.append(Figure(total, before[total], after, _percent(before[total], after), limits.totals))
    return Change(compared_with=version, figures=figures)
