"""Dash login accounts ("user:password:role"), checked without leaking timing."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlparse

from werkzeug.security import check_password_hash

ROLES = ("viewer", "submitter", "publisher", "admin")
ROLE_RANK = {"viewer": 0, "publisher": 0, "submitter": 1, "admin": 2}
HASH_PREFIXES = ("scrypt:", "pbkdf2:")


@dataclass(frozen=True)
class Account:
    username: str
    password: str  # plain text, or a werkzeug hash ("scrypt:..." / "pbkdf2:...")
    role: str


def parse_accounts(text: str | None) -> dict[str, Account]:
    """'alice:secret:admin,bob:pw:viewer' -> accounts by name. Raises ValueError on a bad entry.

    The password is everything between the first and the last colon, so hashes may hold colons.
    """
    accounts: dict[str, Account] = {}
    for entry in (text or "").replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        user, sep, rest = entry.partition(":")
        password, sep2, role = rest.rpartition(":")
        if not sep or not sep2 or not user or not password:
            raise ValueError(f"account {user or entry!r} must look like user:password:role")
        if role not in ROLES:
            raise ValueError(f"account {user!r} has role {role!r}; use one of {', '.join(ROLES)}")
        if user in accounts:
            raise ValueError(f"account {user!r} is listed twice")
        accounts[user] = Account(username=user, password=password, role=role)
    return accounts


def check_password(account: Account | None, password: str) -> bool:
    if account is None:
        hmac.compare_digest(password.encode(), b"x" * 16)  # same work for unknown users
        return False
    if account.password.startswith(HASH_PREFIXES):
        return check_password_hash(account.password, password)
    return hmac.compare_digest(account.password.encode(), password.encode())


def allows(role: str | None, needed: str) -> bool:
    """Whether a role may do what ``needed`` may (viewer < submitter < admin); unknown -> no."""
    if role is None:
        return False
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


def safe_next(value: str | None, *, login_path: str = "/login") -> str:
    """Where to go after login: only a local path (an open redirect would let a link send a
    user elsewhere), never back to the login page; "/" otherwise."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parsed = urlparse(value)
    if parsed.scheme or parsed.netloc or parsed.path.startswith(login_path):
        return "/"
    return value
