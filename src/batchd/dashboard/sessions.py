"""Dashboard sessions and CSRF tokens: the cookie holds a random session id, never an API key.

- **Login** (with `api_keys` or `managed_keys`): a valid key makes a session — a fresh random id
  in the cookie, a row in the store holding only the id's SHA-256 (`Store.create_session`), so a
  session made on one process of a PostgreSQL fleet works on every other. The row also holds an
  HMAC of the key keyed by the id: the session lasts only while that key is still configured for
  its workspace (a managed key: while it is neither revoked nor expired), yet the store holds
  nothing from which the key could be recovered or tried.
- **End**: after `session_idle` unused or `session_lifetime` after login, whichever comes first, or
  at logout (`Store.revoke_session`, for every process at once).
- **CSRF**: every form carries a token derived from the cookie's id (an HMAC keyed by it), checked
  in constant time. A page elsewhere can make the browser send the cookie, but not read it, so it
  cannot make the token. Without keys there is no login, but the cookie still holds a random id
  (stored nowhere) that the tokens derive from.

The cookie is `HttpOnly`, `SameSite=Lax` and `Secure` when browsers reach batchd over https. Lax, not
Strict: a link to a batch page from a chat or an e-mail then opens it logged in, where Strict would
show the login page; every action is a POST, which Lax withholds from other sites as Strict does, and
which the Origin check and the CSRF token refuse anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from batchd.api import keyring, services
from batchd.api.keyring import Caller
from batchd.store import base

COOKIE = "batchd_session"
LEGACY_COOKIE = "batchd_key"  # held the raw API key before sessions; deleted wherever it is seen
CSRF_FIELD = "csrf_token"
ID_BYTES = 32  # of randomness in a session id
TOUCH_EVERY = 60.0  # seconds: a session's last use is written at most this often
_CSRF_PURPOSE = b"batchd dashboard csrf v1"
MANAGED = "managed key "  # prefix of a managed key's proof source


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def digest(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def key_proof(session_id: str, key: str) -> str:
    """Which key made the session, checkable only by whoever holds both the id and the key."""
    return hmac.new(session_id.encode(), key.encode(), hashlib.sha256).hexdigest()


def proof_source(key: str, caller: Caller) -> str:
    """What a session's key proof is made of: a key of `api_keys` itself; for a managed key its id,
    so the session ends when that key is revoked or expires (the store has no key to check against)."""
    return key if caller.key_id is None else MANAGED + caller.key_id


def csrf_token(session_id: str) -> str:
    mac = hmac.new(session_id.encode(), _CSRF_PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_ok(session_id: str | None, token: str) -> bool:
    """Whether `token` is the one of this browser's session id, compared in constant time."""
    # Bytes: compare_digest refuses str with non-ASCII characters, which a forged token may hold.
    return session_id is not None and hmac.compare_digest(csrf_token(session_id).encode(), token.encode())


def cookie_id(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


async def start(svc: services.Services, key: str, workspace: str, now: float) -> str:
    """Makes a session for `key` (its `proof_source`); returns its id, for the cookie."""
    session_id = new_id()
    settings = svc.settings
    session = base.Session(
        digest=digest(session_id),
        workspace=workspace,
        key_proof=key_proof(session_id, key),
        created_at=now,
        expires_at=now + settings.session_lifetime,
        last_seen_at=now,
        revoked_at=None,
    )
    await svc.store.create_session(session, idle=settings.session_idle)
    return session_id


async def workspace_of(svc: services.Services, session_id: str, now: float) -> str | None:
    """The workspace of a live session, or None: unknown, ended, or its key is no longer configured."""
    settings = svc.settings
    found = await svc.store.get_session(digest(session_id))
    if found is None or found.revoked_at is not None or now >= found.expires_at:
        return None
    idle = now - found.last_seen_at
    if idle >= settings.session_idle:
        return None
    keys = [k for k, ws in settings.api_keys.items() if ws == found.workspace]
    if settings.managed_keys:
        managed = await svc.store.list_api_keys(found.workspace)
        keys += [MANAGED + k.id for k in managed if keyring.live(k, now)]
    if not any(hmac.compare_digest(found.key_proof, key_proof(session_id, k)) for k in keys):
        return None
    if idle >= min(TOUCH_EVERY, settings.session_idle / 4):
        await svc.store.touch_session(found.digest, now)
    return found.workspace


async def end(svc: services.Services, session_id: str, now: float) -> None:
    await svc.store.revoke_session(digest(session_id), now)


def set_cookie(response: Response, request: Request, session_id: str, max_age: float | None) -> None:
    """The session cookie; `max_age` None keeps it for the browser's session only."""
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=None if max_age is None else int(max_age),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_https(request),
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_https(request))


def _https(request: Request) -> bool:
    """Whether browsers reach this server over https: its public URL says so, or the request came so."""
    public = services.of(request).settings.public_url
    return public.lower().startswith("https://") or request.url.scheme == "https"
