"""tornado-ingest: an HTTP ingestion gateway (the data-in API) on Tornado."""

__version__ = "0.1.0"
