"""Each command loads only what it uses: every start of the job pays for every import."""

from __future__ import annotations

import json
import subprocess
import sys

UNUSED_BY_BUILD = (
    "customer_activity.jobs.marketplace",
    "customer_activity.jobs.contract_test",
    "customer_activity_dev",
    "entropy_data_sdk",
)


def loaded_after(arguments: list[str]) -> set[str]:
    """The modules loaded once the CLI has parsed `arguments` (`--help` stops right after)."""
    script = (
        "import json, sys\n"
        "from customer_activity.jobs import cli\n"
        "try:\n"
        f"    cli.main({arguments!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(finished.stdout.splitlines()[-1]))


def test_the_build_command_loads_neither_the_marketplace_nor_the_test_engine_nor_dev_tooling():
    loaded = loaded_after(["build", "--help"])
    assert "customer_activity.jobs.build" in loaded
    assert loaded.isdisjoint(UNUSED_BY_BUILD), sorted(loaded & set(UNUSED_BY_BUILD))


def test_a_command_that_needs_the_marketplace_loads_it():
    loaded = loaded_after(["publish", "--dry-run", "--host", "http://127.0.0.1:9"])
    assert "customer_activity.jobs.marketplace" in loaded
