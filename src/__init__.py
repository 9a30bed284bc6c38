"""Customer Activity data product: one row per customer organisation.

`transforms` holds the pure DataFrame logic layer by layer; `jobs` holds the entry
points and every read and write.
"""
