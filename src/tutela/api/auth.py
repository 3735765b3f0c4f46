"""Who is calling: ``Authorization: Bearer <key>``, the key's scope, and its rate limit.

Verified keys are cached in the worker for a few seconds, so a busy key costs one database
lookup per :data:`KEY_CACHE_SECONDS` instead of one per request; a revoked key therefore
stops working within that time on every worker. Unknown keys are never cached.
If the database cannot be reached the lookup raises ``StoreUnavailable`` (503), never lets
the request through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPBearer

from tutela.api.ratelimit import RateLimiter
from tutela.store.database import Store
from tutela.store.keys import ApiKey, Scope, hash_key

KEY_CACHE_SECONDS = 5.0
_GRANTS: dict[tuple[Scope, Scope], bool] = {
    (held, needed): held.allows(needed) for held in Scope for needed in Scope
}
"""``Scope.allows`` for every pair of scopes, computed once: it lists the enum on each call,
a few µs on every request."""
_CACHE_MAX = 10_000
_SCHEME_NAME = "ApiKey"
_SCHEME_DESCRIPTION = "An API key from `tutela keys create`: `Authorization: Bearer tut_...`"


class Authenticator:
    """Turns a request's bearer token into an :class:`ApiKey`, or a 401/403/429."""

    def __init__(self, store: Store, limiter: RateLimiter) -> None:
        self.store = store
        self.limiter = limiter
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()

    async def _look_up(self, secret: str, digest: str) -> ApiKey | None:
        """The key for ``secret`` (whose :func:`hash_key` is ``digest``) from the database,
        in a thread, remembered for :data:`KEY_CACHE_SECONDS` if it is valid."""
        now = time.monotonic()
        key = await run_in_threadpool(self.store.run, lambda: self.store.api_keys.verify(secret))
        with self._lock:
            if key is None:
                self._cache.pop(digest, None)
                return None
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (key, now + KEY_CACHE_SECONDS)
        return key

    async def authenticate(
        self, request: Request, authorization: str | None, needed: Scope
    ) -> ApiKey:
        """The key named by the ``Authorization`` header's value, if it holds ``needed``
        and its rate limit allows another request; else the 401/403/429 to answer."""
        scheme, _, secret = (authorization or "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise _unauthorized("missing bearer token: send 'Authorization: Bearer <key>'")
        digest = hash_key(secret)
        hit = self._cache.get(digest)  # inline, not awaited: most requests end here
        if hit is not None and hit[1] > time.monotonic():
            key: ApiKey | None = hit[0]
        else:
            key = await self._look_up(secret, digest)
        if key is None:
            raise _unauthorized("invalid or revoked API key")
        request.scope["state"]["key_id"] = key.id
        if not _GRANTS[key.scope, needed]:
            raise HTTPException(
                403, f"this key has scope '{key.scope}'; this endpoint needs '{needed}'"
            )
        wait = self.limiter.allow(key.id)
        if wait:
            raise HTTPException(
                429, f"rate limit exceeded; retry in {wait} s", headers={"Retry-After": str(wait)}
            )
        return key


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


class _RequireKey(HTTPBearer):
    """The dependency :func:`require` returns: bearer parsing and key check in one.

    Being an ``HTTPBearer`` makes it the OpenAPI security scheme (``ApiKey``, HTTP bearer)
    of every route that uses it; overriding ``__call__`` makes it one node in FastAPI's
    dependency graph instead of a dependency on the stock ``HTTPBearer``, which FastAPI would
    resolve, cache-key and scope-check separately on every request.
    """

    def __init__(self, needed: Scope) -> None:
        super().__init__(
            auto_error=False, scheme_name=_SCHEME_NAME, description=_SCHEME_DESCRIPTION
        )
        self.needed = needed

    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        authenticator: Authenticator = request.app.state.authenticator
        return await authenticator.authenticate(
            request, request.headers.get("authorization"), self.needed
        )


def require(needed: Scope) -> Callable[[Request], Awaitable[ApiKey]]:
    """A FastAPI dependency: the calling key, which must hold ``needed`` (or a higher scope)."""
    return _RequireKey(needed)
