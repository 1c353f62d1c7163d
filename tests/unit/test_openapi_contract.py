"""One contract: the OpenAPI document, the routes, the error classes and the README's table say the same."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from tornado_ingest import errors, openapi
from tornado_ingest.app import get_handlers
from tornado_ingest.config import parse_config
from tornado_ingest.service import Service

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
SPEC = openapi.document()


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        target = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    return node


def documented_codes(response):
    """(responseCode values, error.code values) a documented response allows."""
    schema = resolve(response)["content"]["application/json"]["schema"]
    properties = schema.get("properties", {})

    def values(node):
        return {node["const"]} if "const" in node else set(node.get("enum", ()))

    return values(properties.get("responseCode", {})), values(
        properties.get("error", {}).get("properties", {}).get("code", {})
    )


def answers_of(operation):
    return {
        int(status): response for status, response in SPEC["paths"][operation[0]][operation[1]]["responses"].items()
    }


INGEST = ("/v2/data/in/{dataset_id}", "post")


def spec_path(route_pattern: str) -> str:
    return re.sub(r"\(\[\^/\]\+\)", "{dataset_id}", route_pattern).rstrip("?").rstrip("/").replace("\\.", ".")


@pytest.fixture(scope="module")
def service():
    config = parse_config({"sinks": {"m": {"type": "memory"}}, "datasets": {}})
    return Service(config)


@pytest.mark.parametrize("management", [False, True])
def test_every_route_is_documented(service, management):
    for pattern, _, _ in get_handlers(service, management):
        assert spec_path(pattern) in SPEC["paths"], pattern


def error_classes():
    return [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.IngestError)]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_is_documented_with_its_status_and_codes(cls):
    operation = ("/ready", "get") if cls is errors.NotReady else INGEST
    response = answers_of(operation)[cls.status_code]
    response_codes, codes = documented_codes(response)
    assert cls.response_code in response_codes and cls.code in codes, (cls, response_codes, codes)


def readme_contract_rows():
    text = README.read_text()
    table = text[text.index("| outcome | HTTP | responseCode | error.code |") :].split("\n\n")[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append((int(cells[-3]), cells[-2], cells[-1]))
    return rows


@pytest.mark.parametrize("status, response_code, code", readme_contract_rows())
def test_every_row_of_the_readme_table_is_documented(status, response_code, code):
    response = answers_of(INGEST)[status]
    if code == "—":  # the success rows (200, 207): no error, the envelope's own responseCode
        schema = resolve(response)["content"]["application/json"]["schema"]
        assert response_code in json.dumps(resolve(schema)), (status, response_code)
        return
    response_codes, codes = documented_codes(response)
    assert response_code in response_codes and code in codes


def test_the_served_document_has_this_version():
    from tornado_ingest import __version__

    assert SPEC["openapi"].startswith("3.1") and SPEC["info"]["version"] == __version__
