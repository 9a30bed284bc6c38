-- Customers by how many of their output ports have an active data contract, and test
-- results: one row per coverage kind and band, for a grouped bar chart.
SELECT
  coverage,
  CASE
    WHEN dataproducts_outputports_total = 0 THEN '0: no output ports'
    WHEN percentage = 0 THEN '1: none'
    WHEN percentage < 50 THEN '2: under half'
    WHEN percentage < 100 THEN '3: half or more'
    ELSE '4: all'
  END AS band,
  COUNT(*) AS customers
FROM (
  SELECT 'data contract' AS coverage, dataproducts_outputports_total,
    dataproducts_outputports_with_datacontract_percentage AS percentage
  FROM customer_activity
  UNION ALL
  SELECT 'test results' AS coverage, dataproducts_outputports_total,
    dataproducts_outputports_with_testresults_percentage AS percentage
  FROM customer_activity
) AS ports
GROUP BY coverage, band
ORDER BY coverage, band
