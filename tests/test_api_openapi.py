"""The OpenAPI document: served, complete (every route and method of the route table is in it,
and nothing else), well-formed, and strict enough that the response checker can fail."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from jupyterlab_pachls.handlers import API_PREFIX, route_table
from jupyterlab_pachls.handlers.system import NotFoundHandler
from openapi_check import SPEC_FILE, OpenApiChecker, api, openapi, raw_api  # noqa: F401
from test_auth import implemented_methods

SPEC = yaml.safe_load(SPEC_FILE.read_text())


def route_operations() -> set[tuple[str, str]]:
    """(METHOD, template) for every handler method of the route table, as the document names them."""
    out = set()
    for pattern, handler, *_ in route_table():
        if handler is NotFoundHandler:
            continue
        path = pattern[len(API_PREFIX):].replace("\\", "")
        params = iter(re.findall(r"\{(\w+)\}", _template_for(path)))
        template = re.sub(r"\(\[\^/\]\+\)", lambda _m: "{" + next(params) + "}", path)
        for method in implemented_methods(handler):
            out.add((method.upper(), template))
    return out


def _template_for(path: str) -> str:
    """The document's template with the same shape as a route pattern."""
    shape = re.sub(r"\(\[\^/\]\+\)", "{}", path)
    for template in SPEC["paths"]:
        if re.sub(r"\{\w+\}", "{}", template) == shape:
            return template
    raise AssertionError(f"route {path} is not in openapi.yaml")


def document_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), template)
        for template, item in SPEC["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }


def test_document_and_route_table_match():
    assert route_operations() == document_operations()


def test_document_is_openapi_3_1_with_valid_schemas():
    assert SPEC["openapi"].startswith("3.1")
    for name, schema in SPEC["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    ids = [op["operationId"] for _, item in SPEC["paths"].items() for m, op in item.items()
           if isinstance(op, dict) and "operationId" in op]
    assert len(ids) == len(set(ids)) == len(document_operations())


def test_every_ref_resolves():
    text = SPEC_FILE.read_text()
    for ref in set(re.findall(r'\$ref: "(#/[^"]+)"', text)):
        node = SPEC
        for part in ref[2:].split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]


def test_every_operation_documents_errors():
    for template, item in SPEC["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                assert "default" in op["responses"], f"{method} {template} has no error response"


async def test_served_document_is_the_packaged_one(api):
    status, body = await api("GET", "openapi.json")
    assert status == 200
    assert body == SPEC


def test_checker_rejects_a_response_that_does_not_match():
    checker = OpenApiChecker(SPEC)
    good = {"name": "r", "project": "default", "description": "", "created": None,
            "size_bytes": 0, "branches": []}
    assert checker.check("GET", "/pachls/api/repos/r", 200, "application/json",
                         json.dumps(good).encode()) == good
    with pytest.raises(AssertionError, match="does not match"):
        checker.check("GET", "/pachls/api/repos/r", 200, "application/json",
                      json.dumps({**good, "branches": ["master"]}).encode())
    with pytest.raises(AssertionError, match="does not match"):
        checker.check("GET", "/pachls/api/repos/r", 404, "application/json",
                      json.dumps({"error": "not_found"}).encode())
    with pytest.raises(AssertionError, match="undocumented success status"):
        checker.check("GET", "/pachls/api/repos/r", 201, "application/json", b"{}")
    with pytest.raises(AssertionError, match="not in the OpenAPI document"):
        checker.check("PATCH", "/pachls/api/repos/r", 200, "application/json", b"{}")
    with pytest.raises(AssertionError, match="documented as JSON"):
        checker.check("GET", "/pachls/api/repos/r", 200, "text/html", b"<html>")
    with pytest.raises(AssertionError, match="no content documented"):
        checker.check("DELETE", "/pachls/api/repos/r", 204, "", b"{}")
