"""Publishing a local Parquet output: an atomic swap of versions, never a partial directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer_activity.jobs import publishing
from customer_activity.jobs.errors import ConfigurationError


def stage(output: publishing.OutputLocation, run_id: str, content: str) -> None:
    """What write_staged leaves behind: a Parquet directory under the staging area."""
    staged = Path(output.staging(run_id))
    staged.mkdir(parents=True)
    (staged / "part-0.parquet").write_text(content)


def no_space_left(*args: object, **kwargs: object) -> None:
    raise OSError("injected: no space left on device")


def published_content(directory: Path) -> str:
    return (directory / "customer_activity" / "part-0.parquet").read_text()


@pytest.fixture
def output(tmp_path: Path) -> publishing.OutputLocation:
    return publishing.OutputLocation(directory=tmp_path)


def test_publishing_points_the_output_at_the_new_version(output, tmp_path):
    stage(output, "run-1", "first")
    publishing.swap_in_parquet_version(output, "run-1")
    stage(output, "run-2", "second")
    publishing.swap_in_parquet_version(output, "run-2")

    assert published_content(tmp_path) == "second"
    assert (tmp_path / "customer_activity").resolve().name == "run-2"
    assert not (tmp_path / ".customer_activity.staging" / "run-2").exists()


def test_the_previous_version_is_kept_and_older_ones_are_removed(output, tmp_path):
    for number in range(1, 4):
        stage(output, f"run-{number}", str(number))
        publishing.swap_in_parquet_version(output, f"run-{number}")

    kept = sorted(p.name for p in (tmp_path / ".customer_activity.versions").iterdir())
    assert kept == ["run-2", "run-3"]


def test_the_link_is_relative_so_the_output_directory_can_move(output, tmp_path):
    stage(output, "run-1", "first")
    publishing.swap_in_parquet_version(output, "run-1")
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    tmp_path.rename(moved)
    assert published_content(moved) == "first"


def test_an_output_from_before_versioning_is_adopted_not_lost(output, tmp_path):
    (tmp_path / "customer_activity").mkdir()
    (tmp_path / "customer_activity" / "part-0.parquet").write_text("old")
    stage(output, "run-1", "new")
    publishing.swap_in_parquet_version(output, "run-1")

    assert published_content(tmp_path) == "new"
    assert (tmp_path / ".customer_activity.versions" / "adopted" / "part-0.parquet").read_text() == "old"


def test_a_delta_table_is_not_replaced_by_a_parquet_publish(output, tmp_path):
    (tmp_path / "customer_activity" / "_delta_log").mkdir(parents=True)
    stage(output, "run-1", "new")
    with pytest.raises(ConfigurationError, match="holds a Delta table; publish it with --table-format delta"):
        publishing.swap_in_parquet_version(output, "run-1")
    assert (tmp_path / "customer_activity" / "_delta_log").is_dir()


def test_an_output_needs_exactly_one_destination(tmp_path):
    with pytest.raises(ConfigurationError, match="exactly one of a directory or a table name"):
        publishing.OutputLocation()
    with pytest.raises(ConfigurationError, match="exactly one of a directory or a table name"):
        publishing.OutputLocation(directory=tmp_path, table="main.schema.customer_activity", table_format="delta")


def test_an_unknown_table_format_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="'csv' is not one of parquet, delta"):
        publishing.OutputLocation(directory=tmp_path, table_format="csv")


def test_a_swap_that_failed_leaves_the_output_and_the_next_one_cleans_up(output, tmp_path, monkeypatch):
    stage(output, "run-1", "first")
    publishing.swap_in_parquet_version(output, "run-1")
    stage(output, "run-2", "second")
    with monkeypatch.context() as patched:
        patched.setattr(Path, "symlink_to", no_space_left)
        with pytest.raises(OSError, match="injected: no space left"):
            publishing.swap_in_parquet_version(output, "run-2")
    assert published_content(tmp_path) == "first"

    stage(output, "run-3", "third")
    publishing.swap_in_parquet_version(output, "run-3")

    assert published_content(tmp_path) == "third"
    assert sorted(p.name for p in (tmp_path / ".customer_activity.versions").iterdir()) == ["run-1", "run-3"]
