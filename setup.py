"""Ships the data contract inside the wheel.

The contract lives in the top-level `datacontracts/` folder, outside the package, so
that it reads as the product's specification. The job reads it at run time, also on
Databricks where only the wheel is installed: the build copies it into
`customer_activity/datacontracts/`. All metadata is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONTRACTS = Path(__file__).resolve().parent / "datacontracts"


class BuildWithContracts(build_py):
    def run(self) -> None:
        if not self.editable_mode:
            # setuptools adds to build/lib and never removes from it: a module since moved
            # or deleted would otherwise ship in every later wheel.
            shutil.rmtree(Path(self.build_lib, "customer_activity"), ignore_errors=True)
        super().run()
        if self.editable_mode:
            # An editable install reads the repository's own datacontracts/ folder.
            return
        target = Path(self.build_lib, "customer_activity", "datacontracts")
        target.mkdir(parents=True, exist_ok=True)
        # Ours, and the providers' contracts the input ports are held to (input_ports/).
        for contract in sorted(CONTRACTS.rglob("*.odcs.yaml")):
            copy = target / contract.relative_to(CONTRACTS)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(contract, copy)


setup(cmdclass={"build_py": BuildWithContracts})
