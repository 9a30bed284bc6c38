"""Reading the physical plan Spark actually ran, for tests about how the build executes.

Only for the classic (JVM-backed) session the tests share: the final adaptive plan of
a DataFrame is available after it ran, through its query execution.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from pyspark.sql import DataFrame

# Operators that pass rows on without changing which rows or where they are.
_PASS_THROUGH = {
    "Project",
    "Filter",
    "Sort",
    "InputAdapter",
    "WholeStageCodegen",
    "AQEShuffleRead",
    "ColumnarToRow",
    "CollectMetrics",
}
_AGGREGATES = {"HashAggregate", "SortAggregate", "ObjectHashAggregate"}
JOINS = {"SortMergeJoin", "BroadcastHashJoin", "ShuffledHashJoin", "BroadcastNestedLoopJoin", "CartesianProduct"}


@dataclass(frozen=True)
class Node:
    """One operator of the executed plan, reached through query stages but not reuse."""

    jvm: object

    @property
    def name(self) -> str:
        # Whole-stage code generation numbers its stages: "WholeStageCodegen (3)".
        return re.sub(r" \(\d+\)$", "", str(self.jvm.nodeName()))

    @property
    def text(self) -> str:
        return str(self.jvm.simpleString(1000))

    @property
    def children(self) -> list[Node]:
        name = self.name
        if name == "AdaptiveSparkPlan":
            return [Node(self.jvm.executedPlan())]
        if name.endswith("QueryStage"):
            return [Node(self.jvm.plan())]
        children = self.jvm.children()
        return [Node(children.apply(i)) for i in range(children.size())]


def executed_plan(frame: DataFrame) -> Node:
    """The final plan of `frame`, after running it once (adaptive plans change as they run)."""
    frame.collect()
    return Node(frame._jdf.queryExecution().executedPlan())


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def scanned_tables(plan: Node) -> Counter[str]:
    """How often each input directory is scanned; a reused exchange is not a scan."""
    scans: Counter[str] = Counter()
    for node in walk(plan):
        if node.name.startswith("Scan"):
            match = re.search(r"\[file:(?P<path>[^\],]+)", node.text)
            assert match, f"no location in {node.text[:300]}"
            # The build names each data file, a plain reader the table's directory; Spark
            # may cut a long location short ("part-0000...."): the table is the last directory.
            parts = match.group("path").rstrip("/").split("/")
            scans[parts[-2] if parts[-1].startswith("part-") or "." in parts[-1] else parts[-1]] += 1
    return scans


def joins(plan: Node) -> list[Node]:
    return [node for node in walk(plan) if node.name in JOINS]


def join_keys(join: Node) -> str:
    match = re.search(r"\[(?P<keys>[^\]]*)\]", join.text)
    return match.group("keys") if match else ""


def producer(node: Node) -> tuple[Node, list[str]]:
    """The first operator below `node` that changes rows, and the exchanges on the way.

    Exchanges are named as Spark names them: `Exchange` is a shuffle,
    `BroadcastExchange` copies a small side to every task.
    """
    exchanges = []
    while node.name in _PASS_THROUGH or "Exchange" in node.name or node.name.endswith("QueryStage"):
        if node.name == "ReusedExchange":
            # A leaf of the plan: what it reuses produced its rows.
            node = Node(node.jvm.child())
            continue
        if "Exchange" in node.name:
            exchanges.append(node.name)
        [node] = node.children
    return node, exchanges


def is_aggregate(node: Node) -> bool:
    return node.name in _AGGREGATES


def dimension_join_problems(plan: Node, key: str, dimension_window: str) -> list[str]:
    """Joins on `key` that shuffle a side, or that meet anything but aggregates.

    Allowed below a join: an aggregate, another join of the chain, or the dimension's
    own staging window (partitioned by `key` already, named by `dimension_window`).
    """
    problems = []
    for join in joins(plan):
        if key not in join_keys(join):
            continue
        for side in join.children:
            found, exchanges = producer(side)
            if "Exchange" in exchanges:
                problems.append(f"{join.name} shuffles a side for the join")
            is_dimension = found.name == "Window" and dimension_window in found.text
            if not (is_aggregate(found) or found.name in JOINS or is_dimension):
                problems.append(f"{join.name} joins {found.name}: {found.text[:160]}")
    return problems


def raw_columns_read(frame: DataFrame) -> set[tuple[str, str]]:
    """The (table, column)s of file-backed tables that the physical plan of `frame` reads.

    The plan is the one Spark would execute, not run (adaptive execution starts from it); its
    file scans read only the columns the optimizer kept, and a table is named by its directory.
    """
    return {
        (str(scan.jvm.relation().location().rootPaths().head().getName()), str(column))
        for scan in walk(Node(frame._jdf.queryExecution().executedPlan()))
        if scan.name.startswith("Scan")
        for column in scan.jvm.requiredSchema().fieldNames()
    }
