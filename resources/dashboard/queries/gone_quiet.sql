-- Accounts that added neither users nor data products in the last 30 days and whose data
-- products last changed more than 90 days before the build (or that never had one),
-- longest silence first.
SELECT
  organization_id,
  organization_vanity_url,
  users_total,
  users_last_signed_up_at,
  dataproducts_total,
  dataproducts_last_updated_at,
  DATEDIFF(updated_at, dataproducts_last_updated_at) AS days_since_last_dataproduct_update
FROM customer_activity
WHERE users_added_30d = 0
  AND dataproducts_added_30d = 0
  AND (dataproducts_last_updated_at IS NULL OR dataproducts_last_updated_at < updated_at - INTERVAL 90 DAYS)
ORDER BY dataproducts_last_updated_at ASC NULLS FIRST, organization_id
