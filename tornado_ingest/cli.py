"""The ``tornado-ingest`` command.

    tornado-ingest [--config PATH] [--port N] [--address A] [--processes N] [--log-level L] [--log-format F]
                   [--event-loop auto|asyncio|uvloop]
    tornado-ingest check-config PATH
    tornado-ingest hash-key [--new]

With no ``--config`` the packaged default serves dataset ``example`` into
``./data/example.jsonl``. Flags override the config file: they are written into
the document before it is checked, so a bad flag is refused like a bad key.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tornado_ingest import __version__
from tornado_ingest.config import ConfigError, load_config
from tornado_ingest.logs import configure_logging
from tornado_ingest.settings import ServerSettings, meaning_of
from tornado_ingest.workers import metrics_shared_by

PROG = "tornado-ingest"
EXIT_CONFIG_ERROR = 2

#: the flags that override a ``server`` setting: flag -> key
SERVER_FLAGS = {
    "--port": "port",
    "--address": "address",
    "--processes": "processes",
    "--log-format": "log_format",
    "--event-loop": "event_loop",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="HTTP ingestion gateway: data-in API to Kafka, RabbitMQ or files."
    )
    parser.add_argument(
        "--config", metavar="PATH", help="YAML config (default: the packaged example, files under ./data)"
    )
    for flag, key in SERVER_FLAGS.items():
        parser.add_argument(flag, metavar=key.upper(), help="server.%s: %s" % (key, meaning_of(ServerSettings, key)))
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default INFO (any case)",
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check-config", help="check a config file and exit (0 when it is good)")
    check.add_argument("path", metavar="PATH")
    hashing = commands.add_parser("hash-key", help="print the SHA-256 digest of an API key, for auth.keys[].sha256")
    hashing.add_argument("--new", action="store_true", help="make a new random key and print it with its digest")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    if args.command == "check-config":
        return check_config(args.path)
    if args.command == "hash-key":
        return print_key_hash(args.new)
    flags = {key: getattr(args, key) for key in SERVER_FLAGS.values() if getattr(args, key) is not None}
    try:
        config = load_config(args.config, overrides={"server": flags})
    except ConfigError as exc:
        flag = next((flag for flag, key in SERVER_FLAGS.items() if key in flags and exc.path == "server." + key), None)
        if flag is not None:
            return _flag_error(flag, flags[SERVER_FLAGS[flag]], exc.reason)
        return _config_error(args.config, exc)
    configure_logging(args.log_level, config.server.log_format)
    processes = config.server.processes or os.cpu_count() or 1
    with metrics_shared_by(processes):  # before anything imports prometheus_client
        from tornado_ingest.server import run_service

        return run_service(config, load=lambda: load_config(args.config, overrides={"server": flags}))


def check_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _config_error(path, exc)
    print("%s: OK (%d sinks, %d datasets)" % (path, len(config.sinks), len(config.datasets)))
    return 0


def print_key_hash(make_new: bool) -> int:
    """Hash a key read from the terminal (not echoed) or stdin; or make a new one."""
    from tornado_ingest.auth import hash_key, new_key

    if make_new:
        key = new_key()
        print("key:    %s\nsha256: %s" % (key, hash_key(key)))
        return 0
    if sys.stdin.isatty():
        import getpass

        key = getpass.getpass("API key: ")
    else:
        key = sys.stdin.readline().rstrip("\r\n")
    if not key:
        print("%s: hash-key: no key given" % PROG, file=sys.stderr)
        return 1
    print(hash_key(key))
    return 0


def _config_error(path: Optional[str], exc: ConfigError) -> int:
    print("%s: config error in %s: %s" % (PROG, path or "the packaged default", exc), file=sys.stderr)
    return EXIT_CONFIG_ERROR


def _flag_error(flag: str, value: str, reason: str) -> int:
    print("%s: bad flag %s %s: %s" % (PROG, flag, value, reason), file=sys.stderr)
    return EXIT_CONFIG_ERROR


def console_main() -> None:
    """The ``tornado-ingest`` console script."""
    sys.exit(main())
