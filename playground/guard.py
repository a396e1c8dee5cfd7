"""Who may use the page's server, and how much one request may send: checked before any endpoint runs.

The server listens on this machine only (127.0.0.1) unless ``--host`` says otherwise, but that alone does not keep
other web pages out: any site the learner opens can send requests to 127.0.0.1 from the browser, and with DNS
rebinding (a name of the site's own that it points at 127.0.0.1) read the answers too. So, as Jupyter does:

- **Host.** A request must name this server: ``localhost``, an IP address (a rebinding page can only use a name),
  or the ``--host`` given, with the server's port. Anything else is refused (403).
- **Changes come as JSON from this page.** A request that changes something (POST: train, stop, resume, switch
  the model) needs ``Content-Type: application/json`` and a body, which another site's page can only send after
  asking the server first (a CORS preflight, never allowed here); and an ``Origin``, when the browser sends one,
  must be this server's own address.
- **Bodies are bounded** in size (``limit`` bytes, 413) and in time (``BODY_TIMEOUT_S``, 408), and collected in one
  join, so a body sent one byte at a time costs the server as little as any other.
"""
import ipaddress
from urllib.parse import urlsplit

import anyio
from fastapi.responses import JSONResponse

BODY_TIMEOUT_S = 30.0
LOOPBACK_NAMES = ("localhost",)


def refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def split_host(host: str) -> tuple[str, int | None]:
    """``"127.0.0.1:8000"`` → ("127.0.0.1", 8000); ``"[::1]:80"`` → ("::1", 80); no port → None."""
    name, port = host, None
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif host.count(":") == 1:
        name, port = host.split(":")
    try:
        return name.lower(), (int(port) if port is not None else None)
    except ValueError:
        return name.lower(), -1


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class HostGuard:
    """Refuses requests that do not name this server (``Host``), and changes that do not come from its page."""

    def __init__(self, app, listen_host: str = "127.0.0.1", port: int | None = None):
        """``port`` None accepts any port (an app not yet bound to one, as in tests)."""
        self.app, self.port = app, port
        self.names = {*LOOPBACK_NAMES, split_host(listen_host)[0] if listen_host.startswith("[")
                      else listen_host.lower()}

    def ours(self, host: str) -> bool:
        name, port = split_host(host)
        return (name in self.names or is_ip(name)) and (self.port is None or port == self.port)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        host = headers.get("host", "")
        if not self.ours(host):
            return await refuse(403, f"this server answers requests to its own address only, not to {host[:80]!r} "
                                     "(open the address play.py printed)")(scope, receive, send)
        if scope["method"] == "POST":
            origin = headers.get("origin")
            if origin is not None and not (urlsplit(origin).scheme == "http" and self.ours(urlsplit(origin).netloc)):
                return await refuse(403, f"requests that change something come from this server's own page, not "
                                         f"from {origin[:80]!r}")(scope, receive, send)
            if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                return await refuse(415, "send the request body as JSON, with the header Content-Type: "
                                         "application/json")(scope, receive, send)
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413, whether its size is declared or it is streamed, and one
    that takes over ``BODY_TIMEOUT_S`` to arrive with 408, before any of it is parsed; a POST without a body gets
    422. The pieces are joined once at the end (joining them one by one costs time quadratic in their number). Later
    messages (a client that goes away) reach the app as usual."""

    def __init__(self, app, limit: int, timeout_s: float = BODY_TIMEOUT_S):
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        too_big = refuse(413, f"the request body is over the limit of {self.limit:,} bytes")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await too_big(scope, receive, send)
        pieces, size, more = [], 0, True
        with anyio.move_on_after(self.timeout_s) as deadline:           # one deadline for the whole body
            while more:
                message = await receive()
                if message["type"] != "http.request":                   # the client went away mid-body
                    return
                pieces.append(message.get("body", b""))
                size += len(pieces[-1])
                more = message.get("more_body", False)
                if size > self.limit:
                    return await too_big(scope, receive, send)
        if deadline.cancelled_caught:
            return await refuse(408, f"the request body took over {self.timeout_s:.0f} s to arrive")(
                scope, receive, send)
        body = b"".join(pieces)
        if scope["method"] == "POST" and not body.strip():
            return await refuse(422, "the request needs a JSON body")(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
