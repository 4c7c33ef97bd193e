"""ingest: raw files (API events, developers, incidents, endpoints) into raw.*."""
