"""Session cookies: HttpOnly and SameSite=Strict always, Secure over TLS or when configured."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from services.console.config import Settings
from services.console.main import build_app

ADMIN = "bootstrap-" + "x" * 24


async def _session_cookie(tmp_path: Path, base_url: str, *, secure: bool | None) -> str:
    settings = Settings(data_dir=tmp_path, bootstrap_token=ADMIN, console_secure_cookies=secure)
    api = build_app(settings)._build_api()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=base_url) as c:
        form = await c.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        # As a browser behind a TLS proxy would: it sends the cookie the proxy's HTTPS set.
        c.cookies.clear()
        signin_cookie = form.cookies.get("console_signin") or ""
        signed = await c.post(
            "/signin",
            data={"csrf": csrf.group(1), "token": ADMIN},
            headers={"Cookie": f"console_signin={signin_cookie}"},
        )
    assert signed.status_code == 303
    return next(
        v
        for k, v in signed.headers.multi_items()
        if k == "set-cookie" and v.startswith("console_session=")
    )


@pytest.mark.parametrize(
    ("base_url", "secure", "expected"),
    [
        ("http://console.test", None, False),
        ("https://console.test", None, True),
        ("http://console.test", True, True),
    ],
)
async def test_the_session_cookie_is_httponly_strict_and_secure_behind_tls(
    tmp_path: Path, base_url: str, secure: bool | None, expected: bool
) -> None:
    cookie = (await _session_cookie(tmp_path, base_url, secure=secure)).lower()

    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert ("; secure" in cookie) is expected
