"""Who is asking: staff sessions (signed cookies), API tokens, passwords and CSRF tokens.

- Passwords are hashed with argon2id (argon2-cffi); the database keeps only the hash.
- A browser session is a signed, expiring cookie holding the login, the time the password
  last changed (a new password ends old sessions) and a CSRF token.
- An API client sends ``Authorization: Bearer <token>``; the database keeps the token's
  SHA-256 only. Bearer requests carry no cookie, so they need no CSRF token.
- Every unsafe request authenticated by the cookie must carry the session's CSRF token, in
  the form field ``csrf_token`` or the header ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the login is unknown, so a wrong login costs as long as a wrong
# password and response times do not tell which logins exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD = 10
MAX_PASSWORD = 200
SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def hash_password(password: str) -> str:
    """The argon2id hash of a password; raises ValueError for a too short or long one."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether the password matches; constant work whether or not the login exists."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, bytes]:
    """A new API token and the SHA-256 digest the database keeps."""
    token = "alc_" + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def secret_key(path: Path) -> str:
    """The key that signs session cookies: ALLOCATOR_SECRET_KEY, else a file made once (0600)."""
    env = os.environ.get("ALLOCATOR_SECRET_KEY")
    if env:
        if len(env) < 32:
            raise ValueError("ALLOCATOR_SECRET_KEY must be at least 32 characters")
        return env
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


@dataclass(frozen=True)
class Staff:
    """The signed-in member of a request."""

    login: str
    display_name: str
    restaurant_ids: tuple[int, ...]
    via_token: bool

    @property
    def actor(self) -> str:
        return f"staff:{self.login}"

    @classmethod
    def from_json(cls, info: dict[str, Any], *, via_token: bool) -> Staff:
        return cls(
            login=info["login"],
            display_name=info["display_name"],
            restaurant_ids=tuple(info["restaurant_ids"]),
            via_token=via_token,
        )
