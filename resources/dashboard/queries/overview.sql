-- One row: the customer base at a glance, as of the last build.
SELECT
  COUNT(*) AS customers,
  SUM(users_total) AS users,
  SUM(dataproducts_total) AS data_products,
  SUM(dataproducts_outputports_total) AS output_ports,
  SUM(assets_total) AS assets,
  COUNT_IF(users_added_30d > 0 OR dataproducts_added_30d > 0) AS customers_active_30d
FROM customer_activity
