"""Local developer tooling: the quickstart's `run`, its sample generator, the JVM start-up cache.

Kept apart from the job (`src/`), and out of the wheel the bundle deploys: nothing here runs
on Databricks. `python3 dev.py` puts this folder on the environment's path.
"""
