"""The authorization server's HTTP surface: the token endpoint (RFC 6749 §3.2), the public key
set that verifies its tokens (RFC 7517 §5) and SMART discovery (SMART App Launch 2.0 §2.1,
"Conformance": `.well-known/smart-configuration`, served at the root and under the FHIR base).

Token endpoint errors are RFC 6749 §5.2 JSON, not OperationOutcomes: OAuth clients expect them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from carebridge.access import service
from carebridge.access.assertions import ALGORITHMS as ASSERTION_ALGORITHMS
from carebridge.access.auth import REALM, issuer_of
from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import TokenResponse
from carebridge.access.service import OAuthError, OAuthErrorCode, TokenRequest
from carebridge.kit.clock import utc_now

router = APIRouter(tags=["authorization"])

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
CAPABILITIES = (
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
)
SCOPES_SUPPORTED = (
    *(f"{context}/*.{p}" for context in ("system", "user", "patient") for p in ("cruds", "rs")),
    *(f"{context}/*.{p}" for context in ("system", "user", "patient") for p in ("read", "write")),
    "launch/patient",
    "openid",
    "fhirUser",
)


@router.post("/auth/token")
async def token(request: Request) -> Response:
    """OAuth2 client credentials grant; client_secret_post/basic or private_key_jwt."""
    try:
        token_request = await _token_request(request)
        granted = await run_in_threadpool(_grant, request, token_request)
    except OAuthError as exc:
        return _oauth_error(exc, basic="authorization" in request.headers)
    return JSONResponse(granted.to_json(), headers=NO_STORE)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> Response:
    """The public key(s) that verify this server's access tokens."""
    return JSONResponse(issuer_of(request).key.jwks(), headers={"Cache-Control": "max-age=300"})


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration")
async def smart_configuration(request: Request) -> Response:
    """SMART discovery document (open; no token needed)."""
    return JSONResponse(discovery_document(issuer_of(request).token_url))


def discovery_document(token_url: str) -> dict[str, Any]:
    base = token_url.removesuffix("/auth/token")
    return {
        "token_endpoint": token_url,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": [service.CLIENT_CREDENTIALS],
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": list(CAPABILITIES),
    }


def _grant(request: Request, token_request: TokenRequest) -> TokenResponse:
    """Authenticate in one committed transaction (spending an assertion's jti), then grant."""
    issuer = issuer_of(request)
    now = utc_now()
    service.check_grant_type(token_request)
    with request.app.state.engine.begin() as conn:
        repo = ClientRepository(conn)
        client = service.authenticate(repo, token_request, issuer.token_url, now=now)
    return service.grant(client, token_request.scope, issuer, now=now)


async def _token_request(request: Request) -> TokenRequest:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM:
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, f"send the token request as {FORM}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "the token request is too large")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "the form is not URL-encoded") from None
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        message = f"parameters must not repeat (RFC 6749 §3.2): {', '.join(repeated)}"
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, message)
    form = dict(pairs)
    return TokenRequest(
        grant_type=form.get("grant_type"),
        scope=form.get("scope"),
        client_id=form.get("client_id"),
        client_secret=form.get("client_secret"),
        client_assertion_type=form.get("client_assertion_type"),
        client_assertion=form.get("client_assertion"),
        basic=_basic_credentials(request),
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """`Authorization: Basic` client credentials, form-encoded then base64 (RFC 6749 §2.3.1)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError(scheme)
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, binascii.Error):
        raise OAuthError(
            OAuthErrorCode.INVALID_CLIENT, "the Authorization header must be HTTP Basic"
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthError(OAuthErrorCode.INVALID_CLIENT, "Basic credentials need id:secret")
    return unquote_plus(client_id), unquote_plus(secret)


def _oauth_error(exc: OAuthError, *, basic: bool) -> Response:
    headers = dict(NO_STORE)
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    body = {"error": exc.error.value, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)
