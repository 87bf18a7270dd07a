"""Label Studio served through the Jupyter server, same origin, behind Jupyter's login.

Built on ``jupyter-server-proxy``'s ``LocalProxyHandler`` (authentication on
every request, websocket and header handling) with the two response fixes a
prefixed Label Studio needs:

- Label Studio already puts the prefix (from ``LABEL_STUDIO_HOST``) in its
  redirects and the proxy adds it again: strip one before the proxy adds its own.
- Jupyter's credentials (the Authorization header, a ``?token=`` query, the login and
  XSRF cookies) are checked here and never passed on to Label Studio.
- ``LABEL_STUDIO_HOST`` bakes an absolute origin into pages and assets; a
  browser that opened Jupyter under another host name (localhost vs
  127.0.0.1) would load nothing. The baked origin is rewritten to the
  request's own ``protocol://host`` in text bodies.
- Label Studio's stylesheets load its fonts from root-relative ``url(/static/...)`` and its app
  registers its service worker as ``/sw.js``: both would reach Jupyter's own routes (404), so they
  are rewritten to the proxy's prefix. The service worker then also gets the prefix as its scope,
  never the whole Jupyter origin.

While a managed Label Studio is still starting (first start migrates its
database), the handler answers 503 with a small page that reloads itself, so
the tab shows progress instead of hanging.
"""

from __future__ import annotations

import html
import re
import urllib.parse

from jupyter_server_proxy.handlers import LocalProxyHandler

PREFIX = "pachls/labelstudio"
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/x-javascript")
JUPYTER_QUERY_KEYS = ("token", "_xsrf")
# a stylesheet's root-relative url(/x), url("/x") or url('/x'); not a protocol-relative url(//host/x)
# nor one under the prefix already
CSS_ROOT_URL = rb"""url\((["']?)/(?!/|%s/)"""
SERVICE_WORKER = b'"/sw.js"'


class LabelStudioProxyHandler(LocalProxyHandler):
    """``{base_url}/pachls/labelstudio/<path>`` -> the managed Label Studio process."""

    def initialize(self, state) -> None:
        self.pachls = state  # the extension's PachlsState
        self.proxy_base = PREFIX

    @property
    def labeling(self):
        return self.pachls.labeling

    def __init__(self, *args, **kwargs):
        # jupyter-server-proxy passes rewrite functions the arguments their parameter names ask for,
        # so they are plain closures, not methods (a method's ``self`` would be taken as one).
        def strip_doubled_prefix(response):
            self._strip_doubled_prefix(response)

        def rewrite_origin(response, request):
            self._rewrite_origin(response, request)

        def prefix_root_paths(response):
            self._prefix_root_paths(response)

        kwargs["rewrite_response"] = [strip_doubled_prefix, rewrite_origin, prefix_root_paths]
        super().__init__(*args, **kwargs)

    def _strip_doubled_prefix(self, response) -> None:
        location = response.headers.get("Location")
        if not location:
            return
        baked = self.labeling.baked_origin
        if baked and location.startswith(baked):
            location = location[len(baked):]  # made relative, so the proxy puts the browser's prefix back
        marker = "/" + PREFIX
        at = location.find(marker)
        if location.startswith("/") and at >= 0:
            # Label Studio's own copy of the prefix (its base URL may be quoted differently from ours)
            location = location[at + len(marker):] or "/"
        response.headers["Location"] = location

    def _rewrite_origin(self, response, request) -> None:
        baked = self.labeling.baked_origin
        content_type = response.headers.get("Content-Type", "")
        if not baked or not response.body or not content_type.startswith(TEXT_TYPES):
            return
        own = f"{request.protocol}://{request.host}".encode()
        if baked.encode() != own:
            response.body = response.body.replace(baked.encode(), own)

    def _prefix_root_paths(self, response) -> None:
        content_type = response.headers.get("Content-Type", "")
        if not response.body:
            return
        prefix = (self.base_url.rstrip("/") + "/" + PREFIX).encode()
        if content_type.startswith("text/css"):
            pattern = re.compile(CSS_ROOT_URL % re.escape(prefix[1:]))
            response.body = pattern.sub(lambda m: b"url(" + m.group(1) + prefix + b"/", response.body)
        elif "javascript" in content_type and SERVICE_WORKER in response.body:
            response.body = response.body.replace(SERVICE_WORKER, b'"' + prefix + b'/sw.js"')

    def get_client_uri(self, protocol, host, port, proxied_path):
        # Jupyter's token may come in the query (``?token=``): checked already, never passed on (Label
        # Studio would write it to its log and echo it in redirects).
        uri = super().get_client_uri(protocol, host, port, proxied_path)
        base, sep, query = uri.partition("?")
        if not sep:
            return uri
        # keys compared decoded: ``?%74oken=`` is ``?token=`` to tornado, and so to Jupyter's check
        kept = [p for p in query.split("&")
                if urllib.parse.unquote_plus(p.split("=", 1)[0]) not in JUPYTER_QUERY_KEYS]
        return base + ("?" + "&".join(kept) if kept else "")

    def proxy_request_headers(self) -> dict:
        headers = super().proxy_request_headers()
        # The Authorization header carries Jupyter's credentials, already checked; Label Studio would
        # take it for one of its own tokens and refuse the request. Its UI uses its session cookie.
        headers.pop("Authorization", None)
        # Jupyter's login and XSRF cookies are Jupyter's credentials too: Label Studio gets its own only.
        if "Cookie" in headers:
            jupyter = {self.identity_provider.get_cookie_name(self), "_xsrf"}
            kept = [c for c in headers["Cookie"].split(";")
                    if c.strip() and c.split("=", 1)[0].strip() not in jupyter
                    and not c.strip().startswith("username-")]
            if kept:
                headers["Cookie"] = ";".join(kept).strip()
            else:
                del headers["Cookie"]
        # bodies are rewritten, so ask for them uncompressed
        headers["Accept-Encoding"] = "identity"
        return headers

    async def _ensure_running(self) -> int | None:
        process = self.labeling.label_studio
        if process is None or process.mode != "managed":
            self.set_status(404)
            self.finish("Label Studio is not managed by this server (an external server is configured).")
            return None
        # a short call (see handlers/base.py): it returns at once, the page below says it is starting
        await self.pachls.short_operations.run(process.start)
        status = process.status()
        if status.state != "running":
            self.set_status(503)
            self.set_header("Retry-After", "3")
            self.set_header("Content-Type", "text/html; charset=utf-8")
            seconds = f" ({status.started_seconds:.0f} s)" if status.started_seconds else ""
            message = html.escape(status.message or "")
            self.finish(
                "<!doctype html><meta http-equiv='refresh' content='3'>"
                f"<title>Label Studio is starting</title><p>Label Studio is {html.escape(status.state)}{seconds}. "
                f"The first start prepares its database and can take a minute or two.</p><p>{message}</p>"
            )
            return None
        return process.port

    async def http_get(self, proxied_path):
        port = await self._ensure_running()
        if port:
            return await self.proxy(port, proxied_path)

    async def open(self, proxied_path):
        port = self.labeling.label_studio.port
        return await self.proxy_open("127.0.0.1", port, proxied_path)

    async def _forward(self, proxied_path):
        port = await self._ensure_running()
        if port:
            return await self.proxy(port, proxied_path)

    post = put = delete = patch = options = _forward

    async def head(self, proxied_path):
        return await self._forward(proxied_path)

    def proxy(self, port, proxied_path):
        return super(LocalProxyHandler, self).proxy("127.0.0.1", port, proxied_path)


def proxy_route(state) -> tuple:
    """The route of the proxy (relative to the server's base URL), for the one route table."""
    return (rf"/{PREFIX}/(.*)", LabelStudioProxyHandler, {"state": state})
