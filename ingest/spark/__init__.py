"""Loading raw files into the Spark warehouse with Spark's own readers (ONRAMP_WAREHOUSE=spark).

The same files, reject reasons, idempotency and raw.load_batches bookkeeping as the PostgreSQL
loader (ingest.loader); see ingest.spark.load for how each guarantee is kept without transactions.
"""
