"""Offline checks of the Databricks Asset Bundle: what `databricks bundle validate`
would catch, and the cross-references it would only catch at deploy or run time.

Each check returns a list of problems, so that a test can show it on a broken copy.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import yaml
from databricks.bundles.jobs import Job

VARIABLE = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")
RESOURCE = re.compile(r"\$\{resources\.([a-z_]+)\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_.]+\}")


def load(root: Path) -> dict:
    """databricks.yml with its included resource files merged in, as the CLI merges them."""
    bundle = yaml.safe_load((root / "databricks.yml").read_text())
    for pattern in bundle.get("include", []):
        for path in sorted(root.glob(pattern)):
            _merge(bundle, yaml.safe_load(path.read_text()))
    return bundle


def _merge(into: dict, other: dict) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def jobs(bundle: dict) -> dict[str, dict]:
    return bundle.get("resources", {}).get("jobs", {})


def model_problems(bundle: dict) -> list[str]:
    """Each job as the databricks-bundles package reads it: unknown keys are errors."""
    problems = []
    for name, job in jobs(bundle).items():
        try:
            Job.from_dict(job)
        except (ValueError, TypeError) as error:
            problems.append(f"job {name}: {error}")
    return problems


def project_scripts(root: Path) -> set[str]:
    return set(tomllib.loads((root / "pyproject.toml").read_text())["project"].get("scripts", {}))


def wheel_name(root: Path) -> str:
    """The distribution name as a wheel file spells it (PEP 427: `-` and `.` become `_`)."""
    name = tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"]
    return re.sub(r"[-_.]+", "_", name).lower()


def reference_problems(bundle: dict, scripts: set[str], wheel: str) -> list[str]:
    problems = []
    for name, job in jobs(bundle).items():
        tasks = job.get("tasks", [])
        keys = [task["task_key"] for task in tasks]
        environments = {e["environment_key"] for e in job.get("environments", [])}
        clusters = {c["job_cluster_key"] for c in job.get("job_clusters", [])}
        parameters = {p["name"] for p in job.get("parameters", [])}
        if len(set(keys)) != len(keys):
            problems.append(f"job {name}: duplicate task keys")
        for task in tasks:
            where = f"job {name}, task {task['task_key']}"
            problems.extend(
                f"{where}: depends_on names no task: {dependency['task_key']}"
                for dependency in task.get("depends_on", [])
                if dependency["task_key"] not in keys
            )
            if "environment_key" in task and task["environment_key"] not in environments:
                problems.append(f"{where}: environment_key {task['environment_key']} is not defined")
            if "job_cluster_key" in task and task["job_cluster_key"] not in clusters:
                problems.append(f"{where}: job_cluster_key {task['job_cluster_key']} is not defined")
            wheel_task = task.get("python_wheel_task")
            if wheel_task:
                if wheel_task["entry_point"] not in scripts:
                    problems.append(f"{where}: entry_point {wheel_task['entry_point']} is not a [project.scripts] name")
                if re.sub(r"[-_.]+", "_", wheel_task["package_name"]).lower() != wheel:
                    problems.append(f"{where}: package_name {wheel_task['package_name']} is not the wheel {wheel}")
            for text in _strings(task):
                problems.extend(
                    f"{where}: job parameter {used} is not defined"
                    for used in re.findall(r"\{\{job\.parameters\.([A-Za-z0-9_]+)\}\}", text)
                    if used not in parameters
                )
    return problems


def resource_problems(bundle: dict) -> list[str]:
    """Every `${resources.<kind>.<key>.<field>}` names a resource the bundle defines."""
    defined = bundle.get("resources", {})
    return [
        f"{text}: no resources.{kind}.{key} in the bundle"
        for text in _strings(bundle)
        for kind, key in RESOURCE.findall(text)
        if key not in defined.get(kind, {})
    ]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def variable_problems(bundle: dict) -> list[str]:
    """Every ${var.x} is declared, every declared variable is used, and has a value per target."""
    declared = bundle.get("variables", {})
    outside_declarations = {k: v for k, v in bundle.items() if k != "variables"}
    used = {name for text in _strings(outside_declarations) for name in VARIABLE.findall(text)}
    used |= {name for spec in declared.values() for text in _strings(spec) for name in VARIABLE.findall(text)}
    problems = [f"variable {name} is used but not declared" for name in sorted(used - set(declared))]
    problems += [f"variable {name} is declared but never used" for name in sorted(set(declared) - used)]
    for target, spec in bundle.get("targets", {}).items():
        values = (spec or {}).get("variables", {})
        for name in sorted(set(values) - set(declared)):
            problems.append(f"target {target}: sets undeclared variable {name}")
        for name, definition in declared.items():
            # A lookup (a warehouse by name, say) is a value the CLI resolves at deploy time.
            if "default" not in definition and "lookup" not in definition and name not in values:
                problems.append(f"target {target}: variable {name} has no value")
    return problems


# The Spark of each serverless environment version, through the Databricks Connect client it
# runs. Source: Databricks' release notes, "Serverless environment versions"
# (docs.databricks.com/aws/en/release-notes/serverless/environment-version): version 4 runs
# Python 3.12 with Databricks Connect 17.2 (the wheel's pyspark/version.py: 4.0.0), versions
# 1 to 3 Databricks Connect 14.3, 15.4 and 16.4 (Spark 3.5). A version not listed here has to
# be looked up, and added, before the bundle moves to it.
SERVERLESS_SPARK = {"1": "3.5", "2": "3.5", "3": "3.5", "4": "4.0"}


def pinned(root: Path, package: str) -> str:
    """The version requirements/constraints.txt pins `package` to."""
    for line in (root / "requirements" / "constraints.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].split(";")[0].strip()
    raise LookupError(f"{package} is not pinned")


def environment_problems(bundle: dict, spark_version: str) -> list[str]:
    """Every serverless environment the bundle runs is on the Spark minor of `spark_version`."""
    minor = ".".join(spark_version.split(".")[:2])
    declared = bundle.get("variables", {}).get("environment_version", {}).get("default")
    versions = {"default": declared} | {
        target: (spec or {}).get("variables", {}).get("environment_version", declared)
        for target, spec in bundle.get("targets", {}).items()
    }
    problems = []
    for where, version in versions.items():
        spark = SERVERLESS_SPARK.get(str(version))
        if spark is None:
            problems.append(f"{where}: serverless environment {version} has no known Spark version")
        elif spark != minor:
            problems.append(f"{where}: serverless environment {version} runs Spark {spark}, the pins Spark {minor}")
    return problems
