"""The patient's browser session: their access token kept in a cookie, and CSRF protection.

Browsers cannot attach `Authorization: Bearer` to a page navigation, so the sign-in form takes the
token once and verifies it exactly as the API does (`auth.issuer_of` and
`tokens.verify_access_token`). It is then kept in a cookie that is HttpOnly (no script can read
it), SameSite=Strict (no other site can make the browser send it), Secure when the request came
over https, limited to `/web`, and that expires with the token. Every page request verifies the
cookie's token again and builds the same `TokenGuard` an API call gets (`guard.install_guard`),
so a page is authorized, confined to the patient's compartment and audited like the API call
that does the same thing.

State-changing posts are also checked for cross-site request forgery, beyond SameSite: the
browser's `Origin` and `Sec-Fetch-Site` headers, when sent, must say this origin, and the post
must carry the session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`). The CSRF
token is an HMAC of the access token: bound to the session, no server-side state, and not
computable by a page that cannot read the HttpOnly cookie.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from fastapi.responses import Response

from carebridge.access.auth import issuer_of
from carebridge.access.guard import TokenGuard, install_guard
from carebridge.access.tokens import (
    AccessContext,
    TokenError,
    TokenErrorReason,
    verify_access_token,
)
from carebridge.kit.clock import utc_now

COOKIE = "carebridge_session"
COOKIE_PATH = "/web"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CSRF_CONTEXT = b"carebridge web csrf v1"

# What the sign-in page says for each way a token can fail (no token text is ever echoed).
SIGN_IN_PROBLEMS = {
    TokenErrorReason.MISSING: "Paste your access token to sign in.",
    TokenErrorReason.MALFORMED: (
        "That is not an access token. Paste the whole token your app gave you, on its own."
    ),
    TokenErrorReason.BAD_SIGNATURE: (
        "That access token was not issued by this server, so it cannot be used here."
    ),
    TokenErrorReason.EXPIRED: "That access token has expired. Get a new one and sign in again.",
    TokenErrorReason.WRONG_AUDIENCE: "That access token is for another server.",
    TokenErrorReason.WRONG_ISSUER: "That access token was issued by another server.",
}


class SignInRequiredError(Exception):
    """No session, or its token no longer verifies: the page sends the browser to sign in."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # missing | expired | invalid


class CrossSiteRequestError(Exception):
    """A state-changing post that did not come from this site's own pages."""


def verify(request: Request, token: str | None) -> AccessContext:
    """The token verified as the API verifies a bearer token; `TokenError` otherwise."""
    issuer = issuer_of(request)
    return verify_access_token(token, issuer.key, issuer.policy)


def token_from_form(text: str) -> str:
    """The pasted token, without surrounding space or a `Bearer ` someone copied along."""
    token = text.strip()
    scheme, _, rest = token.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else token


def start(response: Response, request: Request, token: str, ctx: AccessContext) -> None:
    """Keep the verified token in the session cookie until the token expires."""
    lifetime = int((ctx.expires_at - utc_now()).total_seconds())
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(lifetime, 0),
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def end(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


async def signed_in(request: Request) -> TokenGuard:
    """The guard for the cookie's token, installed on the request as the API installs it."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequiredError("missing")
    try:
        ctx = verify(request, token)
    except TokenError as exc:
        raise SignInRequiredError(
            "expired" if exc.reason is TokenErrorReason.EXPIRED else "invalid"
        ) from None
    return await install_guard(request, ctx)


def csrf_token(request: Request) -> str:
    """The session's CSRF token ("" without a session)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return ""
    return hmac.new(token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def check_same_origin(request: Request) -> None:
    """Refuse a post that the browser says came from another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise CrossSiteRequestError
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request):
        raise CrossSiteRequestError


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a post without this session's CSRF token (form field or header)."""
    check_same_origin(request)
    expected = csrf_token(request)
    offered = submitted or request.headers.get(CSRF_HEADER) or ""
    if not expected or not hmac.compare_digest(offered.encode(), expected.encode()):
        raise CrossSiteRequestError


def _own_origin(request: Request) -> str:
    url = request.base_url
    return f"{url.scheme}://{url.netloc}"
