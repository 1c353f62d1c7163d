"""The benchmark harness: ``python -m bench`` measures the service against a bare Tornado handler.

It is a benchmark, not a test: nothing here runs in CI. See ``python -m bench --help``;
a run writes ``bench/RESULTS.md``.
"""
