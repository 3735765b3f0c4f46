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
from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tutela.api.ratelimit import RateLimiter
from tutela.store.database import Store
from tutela.store.keys import ApiKey, Scope, hash_key

KEY_CACHE_SECONDS = 5.0
_CACHE_MAX = 10_000
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `tutela keys create`: `Authorization: Bearer tut_...`",
)


class Authenticator:
    """Turns a request's bearer token into an :class:`ApiKey`, or a 401/403/429."""

    def __init__(self, store: Store, limiter: RateLimiter) -> None:
        self.store = store
        self.limiter = limiter
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()

    async def key_for(self, secret: str) -> ApiKey | None:
        """The key for ``secret``: from the cache, else from the database (in a thread)."""
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
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
        self, request: Request, credentials: HTTPAuthorizationCredentials | None, needed: Scope
    ) -> ApiKey:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("missing bearer token: send 'Authorization: Bearer <key>'")
        key = await self.key_for(credentials.credentials.strip())
        if key is None:
            raise _unauthorized("invalid or revoked API key")
        request.scope["state"]["key_id"] = key.id
        if not key.scope.allows(needed):
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


def require(needed: Scope) -> Callable[[Request], ApiKey]:
    """A FastAPI dependency: the calling key, which must hold ``needed`` (or a higher scope)."""

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> ApiKey:
        authenticator: Authenticator = request.app.state.authenticator
        return await authenticator.authenticate(request, credentials, needed)

    dependency.__name__ = f"require_{needed}"
    return dependency
