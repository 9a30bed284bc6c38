"""Where the tests find the repository and the shared schemas beside it."""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED_SCHEMAS = REPOSITORY.parent / "shared" / "schemas"
