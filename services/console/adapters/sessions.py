"""Console sessions (adapters layer): a bearer token exchanged for an opaque session id.

Sessions live in this process's memory only: a restart signs everyone out, and the bearer
token never leaves the server again after sign-in (the browser holds a random id). Each
session has its own CSRF token, and expires after `idle` without a request from its user
(the live event stream does not count as use).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.console.app import idle_expired
from services.console.core.access import Viewer


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in browser."""

    sid: str
    csrf: str
    viewer: Viewer
    token: str
    last_seen: datetime

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant-time)."""
        return bool(presented) and hmac.compare_digest(self.csrf, str(presented))


class SessionStore:
    """Sessions by id, with idle expiry on the given clock."""

    def __init__(self, *, idle: timedelta, now: Callable[[], datetime]) -> None:
        self._idle = idle
        self._now = now
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, viewer: Viewer, token: str) -> Session:
        """A new session for `viewer`, who signed in with `token`."""
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), viewer, token, self._now()
        )
        with self._lock:
            self._sessions[session.sid] = session
        return session

    def get(self, sid: str | None, *, touch: bool = True) -> Session | None:
        """The live session with this id; an idle-expired one is dropped. `touch` marks use."""
        if not sid:
            return None
        now = self._now()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if idle_expired(session.last_seen, now, self._idle):
                del self._sessions[sid]
                return None
            if touch:
                session = self._sessions[sid] = replace(session, last_seen=now)
            return session

    def drop(self, sid: str | None) -> None:
        """Sign the session out (no-op for an unknown id)."""
        with self._lock:
            self._sessions.pop(sid or "", None)
