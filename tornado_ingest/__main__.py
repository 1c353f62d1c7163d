from tornado_ingest.cli import console_main

console_main()
