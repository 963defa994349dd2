"""
CSV import of historical data (customers, orders, exchange rates): one definition of the formats, the row
validation and the batched writes (`rows`), used by the `import_csv` command and by the console's import
page (`views`: upload, preview with the column mapping, a background import with progress and per-row
errors). It lives in the tagging app because a customers file may carry tags (tagging depends on customers).
"""
