"""Where the tests find the repository and the public schemas they validate against."""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
# Copies of public schemas, with their sources noted in the README beside them.
SCHEMAS = REPOSITORY / "tests" / "schemas"
