"""The floor the quickstart's build is compared with reads and counts every raw table."""

from __future__ import annotations

import bare_spark_job
import pyarrow.parquet as pq

from customer_activity.transforms.input_ports import INPUT_PORTS


def test_it_counts_each_raw_table_as_its_files_say(spark, sample_source, capsys):
    assert bare_spark_job.main([str(sample_source)]) == 0

    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert printed.keys() == set(INPUT_PORTS)
    for table in INPUT_PORTS:
        rows = sum(pq.read_metadata(path).num_rows for path in (sample_source / table).glob("*.parquet"))
        assert int(printed[table]) == rows > 0
