"""A raw table whose files disagree on their schema, as dlt's schema evolution leaves them."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from customer_activity.jobs import raw_files
from customer_activity.jobs.errors import EXIT_INPUT_ERROR, EXIT_OK
from customer_activity_testing import reference
from customer_activity_testing.outputs import AS_OF, as_utc, build, fingerprint, run_report, table_files
from customer_activity_testing.outputs import published as published_rows


@pytest.mark.parametrize(
    ("left", "right", "wider"),
    [
        (T.IntegerType(), T.LongType(), T.LongType()),
        (T.ByteType(), T.ShortType(), T.ShortType()),
        (T.FloatType(), T.DoubleType(), T.DoubleType()),
        (T.IntegerType(), T.DoubleType(), T.DoubleType()),
        (T.LongType(), T.DecimalType(10, 2), T.DecimalType(22, 2)),
        (T.DecimalType(38, 10), T.DecimalType(20, 0), T.DecimalType(38, 10)),
        # Twenty whole digits of a long and twenty fractional ones exceed 38: the fraction gives way.
        (T.LongType(), T.DecimalType(38, 20), T.DecimalType(38, 18)),
        (T.DateType(), T.TimestampType(), T.TimestampType()),
        (T.DateType(), T.TimestampNTZType(), T.TimestampNTZType()),
        (T.TimestampNTZType(), T.TimestampType(), T.TimestampType()),
        (T.StringType(), T.StringType(), T.StringType()),
        (T.StringType(), T.LongType(), None),
        (T.StringType(), T.TimestampType(), None),
        (T.BooleanType(), T.IntegerType(), None),
    ],
)
def test_compatible_types_widen_and_others_do_not(left, right, wider):
    assert raw_files.wider_type(left, right) == wider
    assert raw_files.wider_type(right, left) == wider


def test_footer_types_map_as_sparks_parquet_reader_reads_them():
    assert raw_files.spark_type(pa.int32()) == T.IntegerType()
    assert raw_files.spark_type(pa.uint64()) == T.DecimalType(20, 0)
    assert raw_files.spark_type(pa.timestamp("us", tz="UTC")) == T.TimestampType()
    assert raw_files.spark_type(pa.timestamp("ms")) == T.TimestampNTZType()
    assert raw_files.spark_type(pa.decimal128(38, 10)) == T.DecimalType(38, 10)
    with pytest.raises(raw_files.UnsupportedTypeError, match="nanoseconds"):
        raw_files.spark_type(pa.timestamp("ns", tz="UTC"))
    with pytest.raises(raw_files.UnsupportedTypeError):
        raw_files.spark_type(pa.list_(pa.int64()))


def test_legacy_and_dictionary_encoded_columns_read_as_spark_reads_them(spark, tmp_path):
    written = tmp_path / "t.parquet"
    table = pa.table(
        {
            "id": pa.array(["a", "b", "a"]).dictionary_encode(),
            "at": pa.array([datetime(2026, 1, 1), None, datetime(2026, 1, 2)], pa.timestamp("ns")),
            "n": pa.array([1, 2, 1]).dictionary_encode(),
        }
    )
    # INT96 timestamps: what Spark and Hive wrote before Parquet had a timestamp type.
    pq.write_table(table, written, use_deprecated_int96_timestamps=True)

    dataset = raw_files.inspect("t", tmp_path, [written], ("id", "at", "n"))

    assert dataset.problems == []
    assert dataset.schema.simpleString() == "struct<id:string,at:timestamp,n:bigint>"
    assert dataset.schema == spark.read.parquet(str(written)).schema
    assert dataset.read(spark).count() == 3


def test_the_merged_schema_does_not_depend_on_file_order(tmp_path):
    pq.write_table(
        pa.table({"id": ["a"], "v": pa.array([1], pa.int32()), "d": [date(2026, 1, 1)]}), tmp_path / "a.parquet"
    )
    pq.write_table(
        pa.table({"id": ["b", "c"], "v": pa.array([2, 3], pa.int64()), "d": [datetime(2026, 1, 2)] * 2, "x": [1, 2]}),
        tmp_path / "b.parquet",
    )
    files = sorted(tmp_path.glob("*.parquet"))
    forward = raw_files.inspect("t", tmp_path, files, ("id", "v", "d", "x", "absent"))
    backward = raw_files.inspect("t", tmp_path, files[::-1], ("id", "v", "d", "x", "absent"))
    assert forward.schema == backward.schema
    assert forward.schema.simpleString() == "struct<id:string,v:bigint,d:timestamp_ntz,x:bigint>"
    assert forward.rows_missing_columns == {"x": 1}
    assert forward.problems == []


def split(source: Path, table: str, change_first, change_second, swap: bool) -> tuple[int, int]:
    """Rewrite `table` as two files, each half changed; `swap` swaps the files' names (and so their order)."""
    data = pq.read_table(source / table)
    half = data.num_rows // 2
    first, second = change_first(data.slice(0, half)), change_second(data.slice(half))
    shutil.rmtree(source / table)
    (source / table).mkdir()
    names = ("part-00001.parquet", "part-00000.parquet") if swap else ("part-00000.parquet", "part-00001.parquet")
    pq.write_table(first, source / table / names[0])
    pq.write_table(second, source / table / names[1])
    return first.num_rows, second.num_rows


def narrowed(column: str, to: pa.DataType):
    def change(data: pa.Table) -> pa.Table:
        index = data.schema.get_field_index(column)
        return data.set_column(index, pa.field(column, to), data.column(column).cast(to, safe=False))

    return change


def same(data: pa.Table) -> pa.Table:
    return data


@pytest.mark.e2e
@pytest.mark.parametrize("swap", [False, True], ids=["older-files-first", "newer-files-first"])
def test_files_that_lack_a_column_or_hold_it_narrower_give_the_reference_result(source, output_copy, swap):
    """dlt added `created_by` later and widened `version`: the result is the same in either file order."""
    without, _ = split(source, "organization", lambda data: data.drop(["created_by"]), same, swap)
    split(source, "data_product", narrowed("version", pa.int32()), same, swap)
    split(source, "asset", narrowed("created_at", pa.date32()), same, swap)
    output = output_copy

    assert build(source, output) == EXIT_OK

    published = published_rows(output).to_pylist()
    expected = reference.customer_activity(source, AS_OF)
    assert Counter(row["organization_id"] for row in published) == Counter(expected.keys())
    for row in published:
        row.pop("updated_at")
        assert {k: as_utc(v) for k, v in row.items()} == {
            k: as_utc(v) for k, v in expected[row["organization_id"]].items()
        }
    report = run_report(output)
    assert report["inputs"]["organization"]["rows_missing_columns"] == {"created_by": without}
    assert report["inputs"]["data_product"]["rows_missing_columns"] == {}


@pytest.mark.e2e
@pytest.mark.parametrize("swap", [False, True], ids=["text-first", "number-first"])
def test_files_that_disagree_on_a_columns_kind_stop_the_run_before_any_work(source, output_copy, capsys, swap):
    as_text = narrowed("version", pa.string())
    split(source, "data_product", as_text, same, swap)
    before, files = fingerprint(output_copy), table_files(output_copy)

    assert build(source, output_copy) == EXIT_INPUT_ERROR

    error = capsys.readouterr().err
    assert "data_product.version: files disagree on its type: " in error
    assert "string in part-0000" in error
    assert "bigint in part-0000" in error
    assert "Traceback" not in error
    assert fingerprint(output_copy) == before
    assert table_files(output_copy) == files
    assert run_report(output_copy)["status"] == "failed"


def test_a_file_without_any_wanted_column_still_counts_its_rows(tmp_path):
    pq.write_table(pa.table({"other": [Decimal(1)]}), tmp_path / "a.parquet")
    dataset = raw_files.inspect("t", tmp_path, [tmp_path / "a.parquet"], ("id",))
    assert dataset.schema.fields == []
    assert dataset.rows_missing_columns == {}
    assert [file.rows for file in dataset.files] == [1]


def test_a_files_path_has_its_glob_characters_escaped():
    assert raw_files.literal_path(Path("/data/raw[1]{a,b}/x*?.parquet")) == r"/data/raw\[1\]\{a,b\}/x\*\?.parquet"
    assert raw_files.literal_path(Path("/data/a\\b")) == r"/data/a\\b"
    assert raw_files.literal_path(Path("/data/plain name.parquet")) == "/data/plain name.parquet"
