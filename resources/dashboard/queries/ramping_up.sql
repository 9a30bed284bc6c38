-- Accounts that grew in the last 30 days, largest growth first; the share of each total
-- that is new tells a first wave (100%) from an established account's growth.
SELECT
  organization_id,
  organization_vanity_url,
  users_added_30d,
  users_total,
  ROUND(100 * users_added_30d / NULLIF(users_total, 0), 1) AS users_added_30d_percentage,
  dataproducts_added_30d,
  dataproducts_total,
  ROUND(100 * dataproducts_added_30d / NULLIF(dataproducts_total, 0), 1) AS dataproducts_added_30d_percentage
FROM customer_activity
WHERE users_added_30d > 0 OR dataproducts_added_30d > 0
ORDER BY users_added_30d + dataproducts_added_30d DESC, organization_id
