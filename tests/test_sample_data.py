"""The sample generator: large samples in several files per table, more children on request, same seed same rows."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq

from customer_activity_dev import sample_data

AS_OF = date(2026, 11, 20)


def rows(directory, table):
    return pq.read_table(directory / table).sort_by("_dlt_id").to_pylist()


def organizations(directory):
    return {row["organization_id"] for row in rows(directory, "organization")} - {None}


def test_organisations_beyond_a_chunk_go_to_further_files_with_the_same_rows(tmp_path, monkeypatch):
    whole = sample_data.generate(tmp_path / "whole", organizations=5, as_of=AS_OF, seed=3)
    monkeypatch.setattr(sample_data, "CHUNK_ORGANIZATIONS", 2)
    chunked = sample_data.generate(tmp_path / "chunked", organizations=5, as_of=AS_OF, seed=3)

    assert sorted(p.name for p in (tmp_path / "chunked" / "organization").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    # The same organisations; the rows without a key are drawn per file, so the random
    # choices after the first file differ.
    assert organizations(tmp_path / "chunked") == organizations(tmp_path / "whole")
    assert chunked.keys() == whole.keys()


def test_more_rounds_of_children_give_more_children_per_organisation(tmp_path):
    one = sample_data.generate(tmp_path / "one", organizations=50, as_of=AS_OF, seed=3)
    four = sample_data.generate(tmp_path / "four", organizations=50, as_of=AS_OF, seed=3, children=4)

    assert organizations(tmp_path / "four") == organizations(tmp_path / "one")
    assert len(organizations(tmp_path / "four")) == 50
    for table in ("organization_member", "asset", "data_product"):
        assert four[table] > 3 * one[table] * 0.7, table


def test_a_new_sample_replaces_the_files_of_an_earlier_larger_one(tmp_path, monkeypatch):
    monkeypatch.setattr(sample_data, "CHUNK_ORGANIZATIONS", 2)
    sample_data.generate(tmp_path, organizations=5, as_of=AS_OF, seed=3)
    monkeypatch.setattr(sample_data, "CHUNK_ORGANIZATIONS", 10)
    counts = sample_data.generate(tmp_path, organizations=5, as_of=AS_OF, seed=3)

    assert [p.name for p in (tmp_path / "asset").iterdir()] == ["part-00000.parquet"]
    assert pq.read_table(tmp_path / "asset").num_rows == counts["asset"]
