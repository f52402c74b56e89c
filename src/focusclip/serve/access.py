"""Who may use the server: a secret from the environment, asked for by the page and the API.

* The page (Gradio) shows its login form; the password is the secret, the user name is free (it is
  shown nowhere). Gradio keeps a random session cookie after the login, never the secret.
* The JSON API (``/api/...``) takes ``Authorization: Bearer <secret>``; anything else is a 401
  ``{"error": ...}``.

Both compare in constant time (:func:`hmac.compare_digest` on the UTF-8 bytes). The secret lives in the
environment variable ``FOCUSCLIP_SERVE_TOKEN`` (so it is not in the shell history or ``ps``), is held
only by this module's objects (``repr`` hides it) and is never logged.

A server that listens on anything but loopback must either have a secret or be declared open
(``--open``): :func:`check_access` refuses the start otherwise.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from focusclip.errors import UsageError

logger = logging.getLogger(__name__)

TOKEN_ENV = "FOCUSCLIP_SERVE_TOKEN"
API_PREFIX = "/api"


def token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The secret in ``FOCUSCLIP_SERVE_TOKEN`` (None when unset); set but blank is an error."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV)
    if token is None:
        return None
    if not token.strip():
        raise UsageError(f"{TOKEN_ENV} is set but blank; set it to a secret (e.g. the output of "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`) or unset it")
    return token


def token_matches(given: str | bytes | None, token: str) -> bool:
    """``given == token`` in constant time (for a given length of ``token``)."""
    if given is None:
        return False
    given_bytes = given.encode("utf-8") if isinstance(given, str) else bytes(given)
    return hmac.compare_digest(given_bytes, token.encode("utf-8"))


def check_access(host: str, token: str | None, open_: bool) -> None:
    """A UsageError unless access is settled: loopback, or a secret, or explicitly open (not both)."""
    from focusclip.serve.app import is_loopback

    if token is not None and open_:
        raise UsageError(f"--open and {TOKEN_ENV} contradict each other: unset {TOKEN_ENV} to serve everyone "
                         "who can reach this machine, or drop --open to ask for the secret")
    if token is None and not open_ and not is_loopback(host):
        raise UsageError(f"--host {host}: anyone who can reach this machine could use the page and the API; set "
                         f"{TOKEN_ENV} to a secret (the page asks for it, the API takes 'Authorization: Bearer "
                         "<secret>'), or pass --open to serve them all without one")


class PageLogin:
    """Gradio's ``auth`` callable: any user name, the secret as password."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, username: str, password: str) -> bool:
        ok = token_matches(password, self._token)
        if not ok:
            logger.warning("page login refused (wrong secret)")
        return ok

    def __repr__(self) -> str:
        return "PageLogin(<secret>)"


class BearerToken:
    """ASGI middleware: requests under ``/api`` need ``Authorization: Bearer <secret>`` (401 otherwise)."""

    def __init__(self, app: Any, token: str, prefix: str = API_PREFIX):
        self.app = app
        self._token = token
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"BearerToken(prefix={self.prefix!r})"

    def _guarded(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self._guarded(scope.get("path", "")):
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() == b"bearer" and token_matches(given.strip(), self._token):
            return await self.app(scope, receive, send)
        message = ("this server needs its secret: send 'Authorization: Bearer <secret>' (the value of "
                   f"{TOKEN_ENV} where the server runs)" if not header else "wrong secret in the Authorization header")
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="focusclip"')]})
        await send({"type": "http.response.body", "body": body})
