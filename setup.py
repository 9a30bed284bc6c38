"""Ships the data contract inside the wheel, and gives every build a version of its own.

The contract lives in the top-level `datacontracts/` folder, outside the package, so
that it reads as the product's specification. The job reads it at run time, also on
Databricks where only the wheel is installed: the build copies it into
`customer_activity/datacontracts/`.

Databricks serverless environments cache an installed wheel by name and version
(databricks/cli#1621): a fix deployed under an unchanged version may never run. So the
wheel the bundle deploys (`python3 dev.py wheel`) carries the release version below with
a PEP 440 local label of its own, `+<UTC time>.g<commit>`, which also tells from a job's
log which build ran. All other metadata is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
CONTRACTS = ROOT / "datacontracts"
# The release version, set by hand for a release; each build adds its own label.
RELEASE = "1.0.0"
BUILD_LABEL_VARIABLE = "CUSTOMER_ACTIVITY_BUILD_LABEL"


def build_version() -> str:
    """The release, with the build's label when the build has one (`dev.py wheel` sets it).

    The label comes from outside because a build runs setup.py more than once (metadata,
    then the wheel), and every run must report the same version.
    """
    label = os.environ.get(BUILD_LABEL_VARIABLE, "").strip()
    return f"{RELEASE}+{label}" if label else RELEASE


class BuildWithContracts(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            # An editable install reads the repository's own datacontracts/ folder.
            return
        target = Path(self.build_lib, "customer_activity", "datacontracts")
        target.mkdir(parents=True, exist_ok=True)
        for contract in sorted(CONTRACTS.glob("*.odcs.yaml")):
            shutil.copyfile(contract, target / contract.name)


setup(version=build_version(), cmdclass={"build_py": BuildWithContracts})
