-- The last 100 builds, newest first: outcome, timing, what staging dropped and quarantined, and the change gate.
SELECT
  CAST(updated_at AS TIMESTAMP) AS started_at,
  status,
  ROUND(TIMESTAMPDIFF(MILLISECOND, CAST(updated_at AS TIMESTAMP), CAST(finished_at AS TIMESTAMP)) / 1000, 1) AS duration_seconds,
  as_of,
  TRY_ELEMENT_AT(durations_seconds, 'build_and_stage') AS build_and_stage_seconds,
  output_rows,
  published_version,
  AGGREGATE(MAP_VALUES(inputs), 0L, (dropped, t) -> dropped + t.rows - t.rows_after_staging) AS rows_dropped_by_staging,
  AGGREGATE(MAP_VALUES(inputs), 0L, (dropped, t) -> dropped + t.null_key_rows_dropped) AS null_key_rows_dropped,
  -- Raw rows quarantined for breaking the provider's row rules, once per rule a row breaks
  -- (runs from before the quarantine count none).
  AGGREGATE(MAP_VALUES(inputs), 0L, (n, t) -> n + AGGREGATE(MAP_VALUES(COALESCE(t.quarantined, MAP())), 0L, (m, v) -> m + v)) AS rows_quarantined,
  change.compared_with AS compared_with_version,
  TRY_ELEMENT_AT(FILTER(change.figures, f -> f.name = 'organizations_gone'), 1).percent AS organizations_gone_percent,
  TRY_ELEMENT_AT(FILTER(change.figures, f -> f.name = 'rows'), 1).percent AS rows_change_percent,
  TRY_ELEMENT_AT(FILTER(change.figures, f -> f.name = 'users_total'), 1).percent AS users_change_percent,
  TRY_ELEMENT_AT(FILTER(change.figures, f -> f.name = 'dataproducts_total'), 1).percent AS dataproducts_change_percent,
  TRY_ELEMENT_AT(FILTER(change.figures, f -> f.name = 'dataproducts_outputports_total'), 1).percent AS outputports_change_percent,
  TRY_ELEMENT_AT(FILTER(change.figures, f -> f.name = 'assets_total'), 1).percent AS assets_change_percent,
  change.accepted AS change_accepted_because,
  error,
  run_id
FROM customer_activity_runs
ORDER BY started_at DESC
LIMIT 100
