"""The least a local Spark job over the raw tables can cost: the floor for the quickstart's build.

    .venv/bin/python benchmarks/bare_spark_job.py SOURCE_DIR

Starts the job's own local session (same settings, Delta's jars included), reads each of
the seven raw tables and counts its rows, and ends. Timed as a whole process beside
`customer-activity build`, it shows how much of a small build is Spark's own start-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

from customer_activity.jobs import session
from customer_activity.transforms.input_ports import INPUT_PORTS


def main(argv: list[str]) -> int:
    [source] = argv
    spark = session.create_spark_session()
    for table in INPUT_PORTS:
        print(table, spark.read.parquet(str(Path(source) / table)).count())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
