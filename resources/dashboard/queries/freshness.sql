-- When the table was last built, and how many hours ago. The freshness alert runs this
-- query too: it fires when hours_since_update exceeds the contract's freshness SLA.
SELECT
  MAX(updated_at) AS last_updated_at,
  ROUND(TIMESTAMPDIFF(SECOND, MAX(updated_at), CURRENT_TIMESTAMP()) / 3600, 2) AS hours_since_update
FROM customer_activity
