from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as readme:
    long_description = readme.read()

setup(
    name="tornado-ingest",
    version="0.1.0",
    description="HTTP ingestion gateway: the data-in API on Tornado, routed per dataset to Kafka, RabbitMQ or files",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["tornado_ingest", "tornado_ingest.*", "sinks", "sinks.*"]),
    package_data={"tornado_ingest": ["default.yaml", "openapi.yaml"]},
    install_requires=[
        "tornado>=6.2",
        "voluptuous>=0.13.1",
        "PyYAML>=5.4",
        # Prometheus metrics, with a multiprocess mode for --processes N: no hand-written exposition.
        "prometheus_client>=0.16",
    ],
    extras_require={
        # crc32c: without it kafka-python checksums every record in pure Python.
        "kafka": ["kafka-python>=2.3", "crc32c>=2.3"],
        # driver: confluent for the Kafka sink: librdkafka, whose network thread runs outside the GIL.
        "confluent": ["confluent-kafka>=2.0"],
        "rabbitmq": ["pika>=1.2"],
        # redis.asyncio (4.2 and later): idempotency.store: redis shares retry-safe answers between replicas.
        "redis": ["redis>=4.2"],
        # Optional, each used when installed: orjson writes records several times faster; msgspec
        # parses request bodies about four times faster than the strict standard-library parse and,
        # unlike orjson, keeps integers past 64 bits exact (tornado_ingest/fast_json.py).
        # uvloop: the event loop in libuv, taken unless server.event_loop says asyncio.
        "speedups": ["orjson>=3.6", "msgspec>=0.18", "uvloop>=0.18; sys_platform != 'win32'"],
        # Dataset event schemas: JSON Schema 2020-12 and earlier drafts, validated in Rust
        # (about 100 times faster than the jsonschema package on a batch of 100 events).
        "schemas": ["jsonschema-rs>=0.20"],
        "test": [
            # pytest-tornado (named by the design card) is unmaintained: its hooks use the old-style
            # marks pytest 10 removes, so pytest stays below 10 until the plugin is replaced.
            "pytest>=7,<10",
            "pytest-tornado>=0.8.1",
            # pytest-tornado imports pkg_resources, which setuptools 81 and later no longer ship.
            "setuptools<81",
            "hypothesis>=6",
            "kafka-python>=2.3",
            "crc32c>=2.3",
            "pika>=1.2",
            "redis>=4.2",
            # librdkafka's mock Kafka cluster for the tests, and the Kafka sink's driver: confluent (tested
            # beside kafka-python in every environment that runs the broker tests).
            "confluent-kafka>=2.3",
            "orjson>=3.6",
            "msgspec>=0.18",
            "uvloop>=0.18",
            "jsonschema-rs>=0.20",
        ],
    },
    entry_points={"console_scripts": ["tornado-ingest = tornado_ingest.cli:console_main"]},
    classifiers=[
        "Framework :: Tornado",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
)
