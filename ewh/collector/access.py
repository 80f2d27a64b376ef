"""Who may call what: the key's scope, then the key's rate limit, before any work is done.

`admit` is called before the body is read when the key comes in the Authorization header
(every SDK and analytics.js 1.84 send it there); only a key sent as `writeKey` in an intake
body is checked after reading the body, and then before the body is parsed when it holds
no `writeKey` at all, and before any event is checked.
"""

from __future__ import annotations

from starlette.requests import Request

from ewh.collector.http_io import HttpError
from ewh.collector.keys import GRANTS, Caller, KeyRing, Scope
from ewh.collector.rate_limit import KeyRateLimiter

CHALLENGE = {"WWW-Authenticate": 'Basic realm="ewh"'}


async def admit(request: Request, needed: Scope, key: str | None) -> Caller:
    """The caller behind `key`, allowed to use a `needed` endpoint now; else an HttpError."""
    if not key:
        where = "the HTTP Basic user name" + (
            " or as writeKey in the body" if needed is Scope.WRITE else "")
        raise HttpError(401, "unauthorized", f"no key: send {_a(needed)} key as {where}",
                        headers=CHALLENGE)
    keys: KeyRing = request.app.state.keys
    caller = keys.identify(key)
    if caller is None:
        raise HttpError(401, "unauthorized", "the key is not valid", headers=CHALLENGE)
    if needed not in GRANTS[caller.scope]:
        raise HttpError(403, "forbidden", f"{_a(caller.scope)} key cannot call this "
                                          f"endpoint: it needs {_a(needed)} key")
    limiter: KeyRateLimiter = request.app.state.rate_limiter
    wait = await limiter.retry_after(caller.key_id)
    if wait is not None:
        raise HttpError(429, "rate_limited",
                        f"too many requests with this key; retry in {wait} s",
                        headers={"Retry-After": str(wait)})
    request.state.caller = caller
    return caller


def admitted(request: Request) -> Caller | None:
    """The caller admitted so far (None until a body key has been checked)."""
    return getattr(request.state, "caller", None)


def _a(scope: Scope) -> str:
    return ("an " if scope is Scope.ADMIN else "a ") + scope.value
