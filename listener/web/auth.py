"""Who may use the API: a bearer token, required whenever the server is reachable from outside.

* Bound to a loopback address (``127.0.0.1``, ``::1``, ``localhost``) without
  a token, the API is open to local programs only; the ``Host`` header must
  then name a loopback host too, so a web page cannot reach the API through
  DNS rebinding.
* Bound to anything else, the server refuses to start without a token
  (``LISTENER_API_TOKEN``). With a token, every ``/api/`` request except
  ``/api/healthz`` needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from listener.errors import ConfigError

TOKEN_ENV = "LISTENER_API_TOKEN"
MIN_TOKEN_LENGTH = 16

bearer_scheme = HTTPBearer(
    auto_error=False,
    description=f"The server's token (environment variable {TOKEN_ENV}); needed when set.",
)


def token_from_env() -> str | None:
    """The API token from ``LISTENER_API_TOKEN`` (None when unset or blank)."""
    value = os.environ.get(TOKEN_ENV, "").strip()
    return value or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> None:
    """Raise ConfigError unless ``token`` is None or long enough to resist guessing."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{TOKEN_ENV} is only {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
            '(for example: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )


def check_bind(host: str, token: str | None) -> None:
    """Raise ConfigError when serving on ``host`` needs a token and none is set."""
    check_token(token)
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without an API token: anyone who can reach it could "
            f"read the mentions and start crawls. Set {TOKEN_ENV} (at least "
            f"{MIN_TOKEN_LENGTH} characters), or serve on 127.0.0.1"
        )


def host_allowed(host_header: str | None) -> bool:
    """Whether a ``Host`` header names a loopback host (any port)."""
    if not host_header:
        return False
    try:
        hostname = urlsplit(f"//{host_header}").hostname
    except ValueError:
        return False
    return hostname is not None and is_loopback(hostname)


class TokenGuard:
    """A FastAPI dependency: checks the bearer token when the server has one."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        """Whether requests need a token."""
        return self._token is not None

    def __call__(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
        """Raise 401 unless the request carries the server's token."""
        if self._token is None:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not credentials or not hmac.compare_digest(given, self._token):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="a valid bearer token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
