"""Input ports: accepted raw schemas and typed columns (SPEC: input ports, staging rule 3)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from customer_activity.transforms import input_ports
from customer_activity.transforms.input_ports import ORGANIZATION, ORGANIZATION_MEMBER, TEST_RESULT
from customer_activity_testing.builders import raw, raw_schema


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_iso_8601_strings_in_every_spelling_are_the_same_utc_instant(spark):
    """Rule 3: `...Z`, a space-separated time and an offset are all UTC instants."""
    frame = spark.createDataFrame(
        [
            ("2024-03-15T10:00:00Z", utc(2024, 3, 15, 10)),
            ("2024-03-15 10:00:00", utc(2024, 3, 15, 10)),
            ("2024-03-15T12:00:00+02:00", utc(2024, 3, 15, 10)),
            ("2024-03-15T10:00:00.250Z", datetime(2024, 3, 15, 10, 0, 0, 250000, tzinfo=UTC)),
            (None, None),
        ],
        "raw string, expected timestamp",
    ).withColumn("parsed", input_ports.parse_utc_timestamp(F.col("raw"), T.StringType()))
    assert_column_equality(frame, "parsed", "expected")


@pytest.mark.parametrize("malformed", ["not a date", "2024-13-45T99:00:00Z", "", "15/03/2024"])
def test_a_malformed_timestamp_becomes_null_instead_of_failing_under_ansi(spark, malformed):
    """Rule 3: ANSI mode is on, yet an unparseable string yields NULL and is flagged."""
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    row = (
        spark.createDataFrame([(malformed,)], "raw string")
        .select(
            input_ports.parse_utc_timestamp(F.col("raw"), T.StringType()).alias("parsed"),
            input_ports.unparseable_timestamp(F.col("raw"), T.StringType()).alias("flagged"),
        )
        .first()
    )
    assert row.parsed is None
    assert row.flagged is True


def test_a_null_timestamp_is_not_counted_as_unparseable(spark):
    row = (
        spark.createDataFrame([(None,)], "raw string")
        .select(input_ports.unparseable_timestamp(F.col("raw"), T.StringType()).alias("flagged"))
        .first()
    )
    assert row.flagged is False


def test_typed_timestamps_dates_and_naive_timestamps_are_kept_as_utc(spark):
    """Rule 3: a typed TIMESTAMP is kept; NTZ values and dates are read as UTC."""
    frame = spark.createDataFrame(
        [(utc(2024, 3, 15, 10), datetime(2024, 3, 15, 10), date(2024, 3, 15))],
        "ts timestamp, ntz timestamp_ntz, d date",
    )
    parsed = frame.select(
        *[input_ports.parse_utc_timestamp(F.col(c), frame.schema[c].dataType).alias(c) for c in frame.columns]
    )
    assert dict(parsed.dtypes) == {"ts": "timestamp", "ntz": "timestamp", "d": "timestamp"}
    # The session works in UTC, so these literals are UTC instants.
    row = parsed.selectExpr(
        "ts = timestamp'2024-03-15 10:00:00'",
        "ntz = timestamp'2024-03-15 10:00:00'",
        "d = timestamp'2024-03-15 00:00:00'",
    ).first()
    assert tuple(row) == (True, True, True)


def test_conform_keeps_the_key_the_asked_columns_and_the_version_columns(spark):
    """Timestamps keep their raw type: staging parses only the rows that survive."""
    frame = raw(spark, "organization_member", {"organization_member_id": "m1", "created_at": "2024-03-15T10:00:00Z"})
    conformed = input_ports.conform(
        frame.withColumn("extra", F.lit("ignored")), ORGANIZATION_MEMBER, ("user_id", "created_at")
    )
    assert dict(conformed.dtypes) == {
        "organization_member_id": "string",
        "user_id": "string",
        "created_at": "string",
        "version": "bigint",
        "_dlt_load_id": "decimal(38,10)",
        "_dlt_id": "string",
    }


def test_conform_refuses_a_column_the_input_port_does_not_have(spark):
    frame = raw(spark, "organization", {"organization_id": "o1"})
    with pytest.raises(ValueError, match=r"organization has no input columns \['extra'\]"):
        input_ports.conform(frame, ORGANIZATION, ("extra",))


def test_integer_identifiers_become_strings(spark):
    """Keys may be Postgres integers; they are compared and output as strings."""
    frame = spark.createDataFrame(
        [(42, None, None, "2024-01-01", 1, "1.0", "a")],
        "organization_id bigint, vanity_url string, created_by string, created_at string, "
        "version int, _dlt_load_id string, _dlt_id string",
    )
    assert input_ports.conform(frame, ORGANIZATION, ()).select("organization_id").first()[0] == "42"


def test_a_well_formed_raw_table_has_no_schema_problems():
    assert input_ports.schema_problems(raw_schema("organization"), ORGANIZATION) == []


def test_a_missing_column_is_named_with_its_table():
    schema = T.StructType([f for f in raw_schema("organization").fields if f.name != "vanity_url"])
    assert input_ports.schema_problems(schema, ORGANIZATION) == ["organization.vanity_url: required column is missing"]


def test_a_text_version_column_is_rejected_with_the_expected_types():
    schema = T.StructType(
        [T.StructField(f.name, T.StringType()) if f.name == "version" else f for f in raw_schema("organization").fields]
    )
    [problem] = input_ports.schema_problems(schema, ORGANIZATION)
    assert problem == "organization.version: has type string, expected a number (integer versions)"


def test_a_numeric_timestamp_column_is_rejected():
    schema = T.StructType(
        [
            T.StructField(f.name, T.LongType()) if f.name == "created_at" else f
            for f in raw_schema("organization").fields
        ]
    )
    [problem] = input_ports.schema_problems(schema, ORGANIZATION)
    assert "organization.created_at: has type bigint" in problem


def test_test_results_need_no_version_columns():
    """test_result is append-only: version and dlt columns are not required."""
    assert "version" not in TEST_RESULT.required_columns
    schema = T.StructType([T.StructField(c, T.StringType()) for c in TEST_RESULT.required_columns])
    assert input_ports.schema_problems(schema, TEST_RESULT) == []
