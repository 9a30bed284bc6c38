-- Customers per main data platform; customers whose output ports name no platform count as "none".
SELECT
  COALESCE(data_platform, 'none') AS data_platform,
  COUNT(*) AS customers
FROM customer_activity
GROUP BY COALESCE(data_platform, 'none')
ORDER BY customers DESC, data_platform
