"""Check every response the API tests see against ``jupyterlab_pachls/openapi.yaml``.

``OpenApiChecker.check`` finds the operation (path template + method), picks the
documented response for the status (or ``default``), and validates the body with
``jsonschema`` (OpenAPI 3.1 schemas are JSON Schema 2020-12). An undocumented
route, method or status, a JSON body that does not match, or a JSON response
declared as something else all fail the test that made the request.

Test modules use it through the fixtures below (import them into the module)::

    from openapi_check import api, raw_api  # noqa: F401
"""

from __future__ import annotations

import json
import re
import urllib.parse
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jupyter_server.utils import url_path_join
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import jupyterlab_pachls

SPEC_FILE = Path(jupyterlab_pachls.__file__).parent / "openapi.yaml"
SPEC_URI = "urn:pachls:openapi"
PREFIX = "/pachls/api"


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class OpenApiChecker:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        self.routes: list[tuple[re.Pattern, str]] = []
        for template in spec["paths"]:
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            self.routes.append((re.compile(f"^{regex}$"), template))
        # Literal paths before templated ones.
        self.routes.sort(key=lambda r: r[1].count("{"))
        self.seen: set[tuple[str, str, int]] = set()

    def find(self, path: str) -> str | None:
        for regex, template in self.routes:
            if regex.match(path):
                return template
        return None

    def operation(self, method: str, path: str) -> tuple[str, dict]:
        template = self.find(path)
        assert template is not None, f"{path} matches no path of the OpenAPI document"
        op = self.spec["paths"][template].get(method.lower())
        assert op is not None, f"{method} {template} is not in the OpenAPI document"
        return template, op

    def validate(self, instance: Any, pointer: str, where: str) -> None:
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry,
            format_checker=jsonschema.FormatChecker(),
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, (
            f"{where}: response does not match the OpenAPI document:\n"
            + "\n".join(f"  at {list(e.absolute_path)}: {e.message}" for e in errors[:10])
            + f"\nbody: {json.dumps(instance)[:1000]}"
        )

    def _deref(self, node: dict) -> tuple[dict, str | None]:
        """Follow a local ``$ref`` (one level, as used for responses)."""
        ref = node.get("$ref")
        if not ref:
            return node, None
        assert ref.startswith("#/"), ref
        target: Any = self.spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return target, ref[1:]

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> Any:
        """Validate one response; returns the decoded JSON body (or None)."""
        if path.startswith(PREFIX):
            path = path[len(PREFIX):]
        path = path.split("?", 1)[0]
        if self.find(path) is None:
            # Not an API route: the catch-all answers a JSON 404 in the Error shape.
            assert status == 404, f"{method} {path}: no such route, yet status {status}"
            assert content_type.split(";")[0].strip() == "application/json"
            decoded = json.loads(body)
            self.validate(decoded, "/components/schemas/Error", f"{method} {path}")
            return decoded
        template, op = self.operation(method, path)
        responses = op["responses"]
        key = str(status) if str(status) in responses else "default"
        assert key in responses, f"{method} {template}: status {status} is not documented"
        if key == "default":
            assert status >= 400, f"{method} {template}: undocumented success status {status}"
        response, ref = self._deref(responses[key])
        pointer = ref or "/" + _pointer("paths", template, method.lower(), "responses", key)
        self.seen.add((method.upper(), template, status))
        content = response.get("content")
        if not content:
            assert not body, f"{method} {template} {status}: no content documented, got {body[:200]!r}"
            return None
        media = content_type.split(";", 1)[0].strip().lower()
        if "application/json" in content:
            assert media == "application/json", (
                f"{method} {template} {status}: documented as JSON, sent {content_type!r}"
            )
            decoded = json.loads(body)
            self.validate(decoded, f"{pointer}/content/{_pointer('application/json')}/schema",
                          f"{method} {template} {status}")
            return decoded
        # A documented non-JSON body (a file download): any media type may be sent.
        return None


@lru_cache(maxsize=1)
def checker() -> OpenApiChecker:
    with open(SPEC_FILE, encoding="utf-8") as f:
        return OpenApiChecker(yaml.safe_load(f))


@pytest.fixture
def openapi() -> OpenApiChecker:
    return checker()


def _encode_body(method: str, body: object, raw: bytes | None) -> bytes | None:
    if raw is not None:
        return raw
    if body is not None:
        return json.dumps(body).encode()
    if method in ("POST", "PUT", "PATCH"):
        return b""
    return None


@pytest.fixture
def raw_api(http_server_client, jp_base_url, jp_auth_header, openapi):
    """``await raw_api("GET", "repos/a%2Fb?x=1")`` → the tornado response, checked against the document.

    The path is sent exactly as given (no escaping), for encoded-traversal tests.
    """

    async def call(method: str, path: str, body: object = None, raw: bytes | None = None,
                   headers: dict | None = None, check: bool = True):
        url = url_path_join(jp_base_url, PREFIX, path)
        response = await http_server_client.fetch(
            url, method=method, body=_encode_body(method, body, raw),
            headers={**jp_auth_header, **(headers or {})}, raise_error=False,
            allow_nonstandard_methods=True, request_timeout=120,
        )
        if check:
            openapi.check(method, "/" + path, response.code,
                          response.headers.get("Content-Type", ""), response.body or b"")
        return response

    return call


@pytest.fixture
def api(raw_api):
    """``await api("GET", "repos", params={...})`` → (status, decoded JSON), checked against the document.

    Path segments are URL-escaped one by one (``^`` becomes ``%5E``); pass ``encoded=True``
    to send the path as it is.
    """

    async def call(method: str, path: str, body: object = None, raw: bytes | None = None,
                   params: dict | None = None, encoded: bool = False):
        if not encoded:
            path = "/".join(urllib.parse.quote(part, safe="") for part in path.split("/"))
        if params:
            path += "?" + urllib.parse.urlencode(params)
        response = await raw_api(method, path, body=body, raw=raw)
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    return call
