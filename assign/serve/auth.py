"""Bearer tokens and the request body limit, as one pure-ASGI middleware in front of the app.

Tokens come from a file or an environment variable and are compared in constant time
(:func:`hmac.compare_digest`). The health checks are the only paths served without one.
A body longer than the limit is refused with 413 before the app reads it, whether the
client announced its length or streams it in chunks.
"""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from assign.errors import InputError
from assign.serve.config import ENV_ADMIN_TOKEN, ENV_TOKEN, ServeConfig
from assign.serve.jsonio import dumps

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
MIN_TOKEN_LEN = 16
USER, ADMIN = "user", "admin"


@dataclass(frozen=True)
class Tokens:
    """The accepted tokens (bytes). ``user`` None means authentication is off."""

    user: bytes | None
    admin: bytes | None

    def role(self, header: bytes | None) -> str | None:
        """The role a ``Authorization`` header value grants, or None. Both tokens are always
        compared, so the time taken does not tell which one came close."""
        if self.user is None:
            return USER
        if not header or header[:7].lower() != b"bearer ":
            return None
        given = header[7:].strip()
        is_user = hmac.compare_digest(given, self.user)
        is_admin = self.admin is not None and hmac.compare_digest(given, self.admin)
        return ADMIN if is_admin else USER if is_user else None


def _read_token(*, path: str | None, env: str, what: str, required: bool) -> bytes | None:
    if path:
        try:
            token = Path(path).read_text().strip()
        except OSError as err:
            raise InputError([f"{what} file {path}: cannot read: {err.strerror}"], what="token") from err
        source = f"{what} file {path}"
    else:
        token = os.environ.get(env, "").strip()
        source = f"environment variable {env}"
        if not token:
            if required:
                raise InputError([(f"no {what}: pass --token-file FILE or set {env} (or --no-auth for local "
                                  f"development)")], what="token")
            return None
    if len(token) < MIN_TOKEN_LEN:
        raise InputError([f"{source}: the token is shorter than {MIN_TOKEN_LEN} characters"], what="token")
    return token.encode()


def load_tokens(config: ServeConfig) -> Tokens:
    """Read the tokens the configuration names; every problem is an :class:`InputError`."""
    if not config.auth:
        return Tokens(user=None, admin=None)
    user = _read_token(path=config.token_file, env=ENV_TOKEN, what="token", required=True)
    admin = _read_token(path=config.admin_token_file, env=ENV_ADMIN_TOKEN, what="admin token", required=False)
    return Tokens(user=user, admin=admin)


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """ASGI middleware: authenticate (the role lands in ``scope["state"]["role"]``), then
    enforce the body limit. ``on_reject(status)`` counts refusals (metrics)."""

    def __init__(self, app, *, tokens: Tokens, max_body_bytes: int, on_reject=None) -> None:
        self.app, self.tokens, self.max_body = app, tokens, max_body_bytes
        self.on_reject = on_reject or (lambda status: None)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        role = self.tokens.role(headers.get(b"authorization"))
        if role is None:
            self.on_reject(401)
            return await _send_json(send, 401, {"detail": "missing or wrong bearer token"},
                                    [(b"www-authenticate", b"Bearer")])
        scope.setdefault("state", {})["role"] = role
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body:
                self.on_reject(413)
                return await _send_json(send, 413, {"detail": f"request body over {self.max_body} bytes"})
            return await self.app(scope, receive, send)
        return await self._buffered(scope, receive, send)

    async def _buffered(self, scope, receive, send) -> None:
        """A body of unannounced length: read it up to the limit, then replay it."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body:
                self.on_reject(413)
                return await _send_json(send, 413, {"detail": f"request body over {self.max_body} bytes"})
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
