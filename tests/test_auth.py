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

from jupyterlab_pachls.handlers import API_PREFIX, route_table
from jupyterlab_pachls.handlers.base import PachlsHandler
from jupyterlab_pachls.handlers.system import NotFoundHandler

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


# -- everything the extension registers on the live web app, the Label Studio proxy included ---------
def extension_rules(app) -> list[tuple[str, type]]:
    """(pattern without the base URL, handler) of every rule whose handler comes from this package."""
    found = []

    def walk(router):
        for rule in router.rules:
            if hasattr(rule.target, "rules"):
                walk(rule.target)
            elif getattr(rule.target, "__module__", "").startswith("jupyterlab_pachls"):
                found.append((rule.matcher.regex.pattern, rule.target))

    walk(app.wildcard_router)
    walk(app.default_router)
    return found


def forged_cookie(name: str, secret: bytes) -> str:
    """A Jupyter login cookie for ``name``, signed with ``secret`` (as another server would sign it)."""
    user = {"username": "mallory", "name": "mallory", "display_name": "mallory", "initials": "M",
            "avatar_url": None, "color": None}
    value = tornado.web.create_signed_value(secret, name, json.dumps(user)).decode()
    return f"{name}={value}"


def cookie_name(host: str, port) -> str:
    """Jupyter's login cookie name for a server reached as ``host:port`` (pytest-jupyter's
    ``http_server_port`` is a (socket, port) pair)."""
    port = port[-1] if isinstance(port, tuple) else port
    return re.sub(r"[^A-Za-z0-9]", "-", f"username-{host}:{port}")


async def test_every_registered_route_is_in_the_route_table_or_the_proxy(jp_serverapp, jp_base_url):
    from jupyterlab_pachls.handlers.labelstudio_proxy import proxy_route

    base = jp_base_url.rstrip("/")
    registered = {pattern.rstrip("$").replace(re.escape(base), "", 1).replace(base, "", 1)
                  for pattern, _ in extension_rules(jp_serverapp.web_app)}
    known = {p for p, *_ in ROUTES} | {proxy_route(None)[0]}
    # A route added outside the table (a webhook, a download) shows up here and must be covered above.
    assert registered == known


ANONYMOUS = {
    "no credentials": {},
    "wrong token": {"Authorization": "token not-the-token"},
    "wrong token scheme": {"Authorization": "Bearer not-the-token"},
}


async def test_every_registered_route_refuses_anonymous_requests(
    jp_serverapp, http_server_client, http_server_port, jp_base_url
):
    """Live check over what the server actually registered (not what the table says): no token, a wrong
    token (header or query), a login cookie signed by another server: refused, for every method."""
    requests = {**ANONYMOUS, "cookie from another server": {"Cookie": "; ".join(
        forged_cookie(cookie_name(host, http_server_port), b"another-server-cookie-secret")
        for host in ("127.0.0.1", "localhost"))}}
    checked = 0
    for pattern, handler in extension_rules(jp_serverapp.web_app):
        path = concrete_path(pattern.replace("(.*)", "x"))
        for method in HTTP_METHODS:
            body = b"{}" if method in ("post", "put", "patch") else None
            for what, headers in requests.items():
                for query in ("", "?token=not-the-token"):
                    response = await http_server_client.fetch(
                        path + query, method=method.upper(), body=body, headers=headers, raise_error=False,
                        follow_redirects=False, allow_nonstandard_methods=True)
                    refused = response.code in (401, 403, 405) or (
                        response.code == 302 and "/login" in response.headers.get("Location", ""))
                    if method == "options" and issubclass(handler, PachlsHandler):
                        # Jupyter's CORS preflight answer: empty, no data, no effect (browsers send none
                        # with credentials). The proxy is not an APIHandler: its OPTIONS must be refused.
                        refused = refused or (response.code in (200, 204) and not response.body)
                    assert refused, f"{method.upper()} {path}{query} with {what}: {response.code}"
                    if response.code == 405:  # tornado's 405 comes before auth: only for methods not handled
                        assert getattr(handler, method) is getattr(tornado.web.RequestHandler, method), (
                            f"{handler.__name__}.{method} answered 405 to an anonymous request")
                    checked += 1
    print(f"anonymous_requests_refused={checked}")
    assert checked > 1000


async def test_the_other_servers_cookie_is_refused_for_its_signature(
    jp_serverapp, http_server_client, http_server_port, jp_base_url, jp_auth_header
):
    """Control for the test above: the login cookie this server sets (after a token request) is
    accepted; the same user, same cookie name, signed by another server's secret is not. So the
    refusal was the signature, not a wrong cookie name."""
    url = url_path_join(jp_base_url, API_PREFIX, "health")
    login = await http_server_client.fetch(url, headers=jp_auth_header)
    cookie = next(h for h in login.headers.get_list("Set-Cookie") if h.startswith("username-")).split(";")[0]
    name, _ = cookie.split("=", 1)
    assert name in {cookie_name(host, http_server_port) for host in ("127.0.0.1", "localhost")}
    ours = await http_server_client.fetch(url, headers={"Cookie": cookie}, raise_error=False)
    assert ours.code == 200
    theirs = await http_server_client.fetch(url, headers={"Cookie": forged_cookie(name, b"x" * 32)},
                                            raise_error=False)
    assert theirs.code == 403
    proxy = await http_server_client.fetch(url_path_join(jp_base_url, "pachls", "labelstudio", "user", "login/"),
                                           headers={"Cookie": forged_cookie(name, b"x" * 32)}, raise_error=False,
                                           follow_redirects=False)
    assert proxy.code in (302, 401, 403) and proxy.code != 200


async def test_label_studio_proxy_refuses_websocket_upgrades_without_login(http_server_client, jp_base_url):
    url = url_path_join(jp_base_url, "pachls", "labelstudio", "ws")
    for headers in ({}, {"Authorization": "token not-the-token"}):
        response = await http_server_client.fetch(
            url, headers={**headers, "Upgrade": "websocket", "Connection": "Upgrade",
                          "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
            raise_error=False, follow_redirects=False)
        assert response.code in (401, 403), response.code
