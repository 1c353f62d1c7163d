from tornado_ingest.cli import run

run()
