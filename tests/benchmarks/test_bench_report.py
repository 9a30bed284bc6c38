"""The benchmark's figures: medians of wall and JVM CPU time, and the ratios the issue's targets name."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import run

from customer_activity.transforms.staging import STAGING_MODELS


def variant(name: str, seconds: list[float], cpu: list[float]) -> run.Variant:
    return run.Variant(name, lambda: None, seconds=seconds, cpu_seconds=cpu, peak_heap_mib=[100.0, 120.0])


def test_the_ratios_are_of_medians_in_wall_and_in_cpu_time(tmp_path, capsys):
    for table in STAGING_MODELS:
        (tmp_path / table).mkdir()
        pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / table / "part-0.parquet")
    measured = [
        variant("build", [8.0, 9.0, 30.0], [14.0, 15.0, 16.0]),
        variant("build transforms only", [6.0, 6.0, 6.0], [10.0, 10.0, 10.0]),
        variant("straightforward", [10.0, 12.0, 11.0], [20.0, 30.0, 25.0]),
        variant("scan floor", [3.0, 3.0, 3.0], [5.0, 5.0, 5.0]),
    ]

    result = run.report(100_000, tmp_path, measured)

    assert result["input_rows"] == dict.fromkeys(STAGING_MODELS, 3)
    assert result["variants"]["build"]["median_seconds"] == 9.0
    assert result["variants"]["build"]["median_jvm_cpu_seconds"] == 15.0
    assert result["build_vs_straightforward"] == round(9.0 / 11.0, 3)
    assert result["cpu_build_vs_straightforward"] == 0.6
    assert result["build_vs_scan_floor"] == 3.0
    assert result["cpu_build_vs_scan_floor"] == 3.0
    printed = capsys.readouterr().out
    assert "(a)/(b) build / straightforward" in printed
    assert "MISSES the target <= 0.8 (wall)" in printed  # 0.82
    assert "MISSES the target <= 2.5 (wall)" in printed


def test_below_the_target_scale_no_verdict_is_given(tmp_path, capsys):
    for table in STAGING_MODELS:
        (tmp_path / table).mkdir()
    measured = [
        variant(name, [1.0], [2.0]) for name in ("build", "build transforms only", "straightforward", "scan floor")
    ]

    result = run.report(500, tmp_path, measured)

    assert result["input_rows"] == dict.fromkeys(STAGING_MODELS, 0)
    assert "(targets apply from 100 000)" in capsys.readouterr().out


def test_without_the_jvms_cpu_time_the_cpu_figures_are_none_not_made_up(tmp_path, capsys):
    for table in STAGING_MODELS:
        (tmp_path / table).mkdir()
    measured = [
        variant(name, [1.0], []) for name in ("build", "build transforms only", "straightforward", "scan floor")
    ]

    result = run.report(100_000, tmp_path, measured)

    assert result["variants"]["build"]["median_jvm_cpu_seconds"] is None
    assert result["cpu_build_vs_straightforward"] is None
    assert "n/a" in capsys.readouterr().out


def test_the_jvms_cpu_time_is_read_and_grows_with_work(spark):
    memory = run.JvmMemory(spark)
    before = memory.cpu_seconds()
    spark.range(2_000_000).selectExpr("sum(id * 3)").collect()
    after = memory.cpu_seconds()
    assert before is not None
    assert after is not None
    assert after > before > 0


def test_rows_compare_equal_whether_their_timestamps_carry_utc_or_no_zone(tmp_path):
    """The build's Delta table reads back zoned, the straightforward port's Parquet without a zone."""
    instant = datetime(2026, 11, 2, 22, 18, 36)
    for name, zone in (("zoned", "UTC"), ("naive", None)):
        (tmp_path / name).mkdir()
        stamps = pa.array([instant.replace(tzinfo=UTC) if zone else instant], pa.timestamp("us", tz=zone))
        table = pa.table({"organization_id": ["o1"], "created_at": stamps, "updated_at": stamps})
        pq.write_table(table, tmp_path / name / "part-0.parquet")

    assert run.published_rows(tmp_path / "zoned") == run.published_rows(tmp_path / "naive")
    assert run.published_rows(tmp_path / "naive") == [{"organization_id": "o1", "created_at": instant}]
