"""Sign-in, sign-out, sessions, CSRF and security headers of the console (adapters layer).

Sign-in takes a bearer token of kit/auth.py (`safetymon tokens create`) and sets a session
cookie: HttpOnly, SameSite=Strict, Path=/, and Secure when the request came over TLS or
the deployment says it sits behind TLS. Every request re-checks the token against the token
file, so a revoked token ends its sessions at once. Every POST carries a CSRF token: the
session's, or for the sign-in form a one-off value also set as a cookie (double submit).
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from kit.auth import TokenStore, TokenStoreError
from services.console.adapters.sessions import Session, SessionStore
from services.console.adapters.web_render import Pages
from services.console.core.access import CONSOLE_ROLES, Viewer

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE: Final = "console_session"
SIGNIN_COOKIE: Final = "console_signin"
_MAX_FORM_BYTES: Final = 8 * 1024
_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; "
        b"style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        b"base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """ASGI middleware: no inline script or style, no framing, nothing cached or referred."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to every HTTP response."""

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                own = {name.lower() for name, _ in headers}
                # A route that set its own policy (a DSMB report's) keeps it.
                headers += [(n, v) for n, v in _HEADERS if n not in own]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form's first values (bodies are already capped by BodyLimits)."""
    raw = (await request.body())[:_MAX_FORM_BYTES].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(raw).items()}


class Guard:
    """Finds the request's session and checks its token is still live."""

    def __init__(self, sessions: SessionStore, tokens: TokenStore, *, secure: bool | None) -> None:
        self.sessions = sessions
        self.tokens = tokens
        self._secure = secure

    def secure(self, request: Request) -> bool:
        """Whether cookies get the Secure flag: configured, else whether this was HTTPS."""
        return self._secure if self._secure is not None else request.url.scheme == "https"

    def session(self, request: Request, *, touch: bool = True) -> Session | None:
        """The live session of this request, or None (expired, revoked, or none)."""
        sid = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.get(sid, touch=touch)
        if session is None:
            return None
        try:
            principal = self.tokens.authenticate(session.token)
        except TokenStoreError:
            return None
        if principal is None or principal.name != session.viewer.name:
            self.sessions.drop(sid)
            return None
        return session

    def sign_in(self, token: str) -> Viewer | None:
        """The viewer of a live token whose role has a console, or None."""
        try:
            principal = self.tokens.authenticate(token)
        except TokenStoreError:
            return None
        if principal is None or principal.role.value not in CONSOLE_ROLES:
            return None
        return Viewer(principal.name, principal.role.value, principal.site)


def install_auth(api: FastAPI, guard: Guard, pages: Pages) -> None:
    """GET/POST /signin and POST /signout."""

    @api.get("/signin")
    async def signin_form(request: Request) -> Response:
        return _signin_page(guard, pages, request, message=None, status=200)

    @api.post("/signin")
    async def signin(request: Request) -> Response:
        form = await form_of(request)
        expected = request.cookies.get(SIGNIN_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return pages.render(
                "error.html.j2",
                403,
                title="Refused",
                message="The form expired or came from elsewhere.",
                viewer=None,
            )
        token = form.get("token", "").strip()
        viewer = guard.sign_in(token)
        if viewer is None:
            return _signin_page(
                guard,
                pages,
                request,
                status=401,
                message="That token is unknown, revoked, or has no console.",
            )
        session = guard.sessions.create(viewer, token)
        response = RedirectResponse("/inbox" if viewer.reads_alerts else "/dsmb", 303)
        response.set_cookie(
            SESSION_COOKIE,
            session.sid,
            httponly=True,
            samesite="strict",
            secure=guard.secure(request),
            path="/",
        )
        response.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    @api.post("/signout")
    async def signout(request: Request) -> Response:
        session = guard.session(request)
        form = await form_of(request)
        if session is None or not session.csrf_ok(form.get("csrf")):
            return pages.render(
                "error.html.j2",
                403,
                title="Refused",
                message="Sign-out needs the page's form.",
                viewer=None,
            )
        guard.sessions.drop(session.sid)
        response = RedirectResponse("/signin", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _signin_page(
    guard: Guard, pages: Pages, request: Request, *, message: str | None, status: int
) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = pages.render("signin.html.j2", status, csrf=csrf, message=message, viewer=None)
    response.set_cookie(
        SIGNIN_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=guard.secure(request),
        path="/signin",
    )
    return response
