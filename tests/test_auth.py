"""Every route of the extension requires authentication.

Two checks, as the extension template's ``check_auth`` does in spirit:
a static one (each handler method is wrapped by ``tornado.web.authenticated``)
and a live one (each route, fetched without a token from a real server,
is refused — and the same request with the token is not).
"""

from __future__ import annotations

import json
import re

import pytest
import tornado.web
from jupyter_server.utils import url_path_join

from jupyterlab_pachls.handlers import API_PREFIX, NotFoundHandler, PachlsHandler, route_table

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_AUTHENTICATED_CODE = tornado.web.authenticated(lambda self: None).__code__


def implemented_methods(handler: type) -> list[str]:
    """HTTP methods the handler defines itself (not tornado's 405 defaults)."""
    return [
        m
        for m in HTTP_METHODS
        if getattr(handler, m, None) is not getattr(tornado.web.RequestHandler, m, None)
        and m != "options"
    ]


def concrete_path(pattern: str) -> str:
    """A URL matching a route pattern: every capture group becomes ``x``."""
    path = re.sub(r"\((?:\?P<\w+>)?[^()]*\)", "x", pattern)
    return path.rstrip("$").replace("\\", "")


ROUTES = route_table()
CASES = [
    (pattern, handler, method)
    for pattern, handler, *_ in ROUTES
    for method in implemented_methods(handler)
]


def test_route_table_is_not_empty_and_namespaced():
    assert ROUTES
    for pattern, handler, *_ in ROUTES:
        assert pattern.startswith(API_PREFIX + "/"), pattern
        assert issubclass(handler, PachlsHandler), handler
        assert implemented_methods(handler), f"{handler.__name__} handles no method"


@pytest.mark.parametrize(
    "pattern,handler,method", CASES, ids=[f"{m.upper()} {p}" for p, _, m in CASES]
)
def test_handler_method_is_wrapped_by_authenticated(pattern, handler, method):
    fn = getattr(handler, method)
    assert fn.__code__ is _AUTHENTICATED_CODE, (
        f"{handler.__name__}.{method} is not decorated with @tornado.web.authenticated "
        "(it must be the outermost decorator)"
    )
    assert not getattr(fn, "__allow_unauthenticated", False)


@pytest.mark.parametrize(
    "pattern,handler,method", CASES, ids=[f"{m.upper()} {p}" for p, _, m in CASES]
)
async def test_route_refuses_requests_without_token(
    pattern, handler, method, jp_serverapp, http_server_client, jp_base_url, jp_auth_header
):
    url = url_path_join(jp_base_url, concrete_path(pattern))
    body = b"{}" if method in ("post", "put", "patch") else None
    anonymous = await http_server_client.fetch(
        url, method=method.upper(), body=body, raise_error=False, follow_redirects=False
    )
    assert anonymous.code in (401, 403), (
        f"{method.upper()} {url} without a token answered {anonymous.code}"
    )

    # The route exists and answers when authenticated (so the 403 above was auth, not routing).
    # A concrete path made of placeholders may well name nothing (404 not_found for repo 'x'),
    # but it must not fall through to the catch-all "No such API route" handler.
    authed = await http_server_client.fetch(
        url, method=method.upper(), body=body, headers=jp_auth_header, raise_error=False
    )
    assert authed.code not in (401, 403, 405), (
        f"{method.upper()} {url} with a token answered {authed.code}"
    )
    if authed.code == 404:
        error = json.loads(authed.body)
        assert error["error"] == "not_found"
        fell_through = error["message"].startswith("No such API route")
        assert fell_through is (handler is NotFoundHandler), (
            f"{method.upper()} {url}: {error['message']}"
        )
    else:
        assert handler is not NotFoundHandler


async def test_wrong_token_is_refused(jp_serverapp, http_server_client, jp_base_url):
    url = url_path_join(jp_base_url, API_PREFIX, "repos")
    response = await http_server_client.fetch(
        url, headers={"Authorization": "token not-the-token"}, raise_error=False
    )
    assert response.code in (401, 403)
