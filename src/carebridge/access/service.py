"""The token endpoint's work: the OAuth2 client credentials grant (RFC 6749 §4.4) with client
authentication by secret (§2.3.1) or signed JWT (RFC 7523 §2.2; SMART Backend Services), and
SMART scopes bounded by the client's registration.

Errors are `OAuthError`s carrying the RFC 6749 §5.2 error code; the endpoint renders them.
Authentication runs in its own transaction, committed before scopes are checked, so an accepted
assertion's `jti` is spent even when the request then fails (it cannot be retried with other
parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from carebridge.access.assertions import (
    JWT_BEARER,
    InvalidAssertionError,
    asserted_client_id,
    verify_assertion,
)
from carebridge.access.credentials import SecretHash, burn_verification_time, verify_secret
from carebridge.access.keys import SigningKey, load_signing_key
from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import Client, TokenResponse
from carebridge.access.scopes import (
    Context,
    InvalidScopeError,
    ScopeSet,
    parse_scopes,
    uncovered,
)
from carebridge.access.tokens import TokenGrant, TokenPolicy, issue_access_token
from carebridge.config import Settings

CLIENT_CREDENTIALS = "client_credentials"
_NO_REFRESH_TOKENS = frozenset({"offline_access", "online_access"})
_AUTHENTICATION_FAILED = "client authentication failed"


class OAuthErrorCode(StrEnum):
    """RFC 6749 §5.2 error codes."""

    INVALID_REQUEST = "invalid_request"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    UNAUTHORIZED_CLIENT = "unauthorized_client"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    INVALID_SCOPE = "invalid_scope"


class OAuthError(Exception):
    """A token request refused with an RFC 6749 §5.2 error (401 for invalid_client)."""

    def __init__(self, error: OAuthErrorCode, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = 401 if error is OAuthErrorCode.INVALID_CLIENT else 400


@dataclass(frozen=True)
class TokenRequest:
    """The parameters of a token request (RFC 6749 §4.4.2, RFC 7523 §2.2)."""

    grant_type: str | None = None
    scope: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_assertion_type: str | None = None
    client_assertion: str | None = None
    basic: tuple[str, str] | None = None  # (client_id, secret) from `Authorization: Basic`


@dataclass(frozen=True)
class TokenIssuer:
    key: SigningKey
    policy: TokenPolicy
    token_url: str


def token_issuer(settings: Settings, key: SigningKey | None = None) -> TokenIssuer:
    """URLs and lifetime from settings: `iss` is the server's base URL, `aud` its FHIR base."""
    base = settings.base_url.rstrip("/")
    key = key or load_signing_key(
        settings.token_signing_key, settings.token_signing_algorithm, settings.token_key_dir
    )
    lifetime = timedelta(seconds=settings.access_token_lifetime_seconds)
    return TokenIssuer(key, TokenPolicy(base, f"{base}/fhir", lifetime), f"{base}/auth/token")


def check_grant_type(request: TokenRequest) -> None:
    """Only the client credentials grant is offered (SMART Backend Services)."""
    if not request.grant_type:
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "grant_type is required")
    if request.grant_type != CLIENT_CREDENTIALS:
        raise OAuthError(
            OAuthErrorCode.UNSUPPORTED_GRANT_TYPE, f"only {CLIENT_CREDENTIALS} is supported"
        )


def authenticate(
    repo: ClientRepository, request: TokenRequest, token_url: str, *, now: datetime
) -> Client:
    """The client, if exactly one authentication method was used and it succeeded (§2.3)."""
    used = [
        request.client_assertion is not None or request.client_assertion_type is not None,
        request.client_secret is not None,
        request.basic is not None,
    ]
    if sum(used) > 1:
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "use one client authentication method")
    if used[0]:
        return _by_assertion(repo, request, token_url, now)
    if request.basic is not None:
        return _by_basic(repo, request, request.basic)
    if request.client_secret is not None:
        if not request.client_id:
            raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "client_secret needs a client_id")
        return _by_secret(repo, request.client_id, request.client_secret)
    raise OAuthError(OAuthErrorCode.INVALID_CLIENT, "client authentication is required")


def _by_basic(repo: ClientRepository, request: TokenRequest, basic: tuple[str, str]) -> Client:
    client_id, secret = basic
    if request.client_id is not None and request.client_id != client_id:
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "client_id differs from the credentials")
    return _by_secret(repo, client_id, secret)


def _by_secret(repo: ClientRepository, client_id: str, secret: str) -> Client:
    client = repo.get(client_id)
    if client is None or not client.active or not (client.secret_hash and client.secret_salt):
        burn_verification_time(secret)
        raise OAuthError(OAuthErrorCode.INVALID_CLIENT, _AUTHENTICATION_FAILED)
    if not verify_secret(secret, SecretHash(client.secret_hash, client.secret_salt)):
        raise OAuthError(OAuthErrorCode.INVALID_CLIENT, _AUTHENTICATION_FAILED)
    return client


def _by_assertion(
    repo: ClientRepository, request: TokenRequest, token_url: str, now: datetime
) -> Client:
    if request.client_assertion_type != JWT_BEARER or not request.client_assertion:
        raise OAuthError(
            OAuthErrorCode.INVALID_REQUEST,
            f"client_assertion_type must be {JWT_BEARER} with a client_assertion",
        )
    try:
        client = _assertion_client(repo, request.client_assertion, request.client_id)
        verified = verify_assertion(
            request.client_assertion,
            client.public_key or "",
            client_id=client.client_id,
            token_url=token_url,
            now=now,
        )
    except InvalidAssertionError as exc:
        raise OAuthError(OAuthErrorCode.INVALID_CLIENT, str(exc)) from None
    repo.forget_assertions_before(now)
    if not repo.remember_assertion(client.client_id, verified.jti, verified.expires_at):
        raise OAuthError(OAuthErrorCode.INVALID_CLIENT, "client_assertion jti was already used")
    return client


def _assertion_client(repo: ClientRepository, assertion: str, client_id: str | None) -> Client:
    asserted = asserted_client_id(assertion)
    if client_id is not None and client_id != asserted:
        raise InvalidAssertionError("client_id differs from the assertion's sub")
    client = repo.get(asserted)
    if client is None or not client.active or not client.public_key:
        raise InvalidAssertionError(_AUTHENTICATION_FAILED)
    return client


def grant(
    client: Client,
    scope: str | None,
    issuer: TokenIssuer,
    *,
    now: datetime,
    patient: str | None = None,
    fhir_user: str | None = None,
) -> TokenResponse:
    """Issue a token for `scope`; `patient`/`fhir_user` override the registration (CLI only)."""
    patient = patient or client.patient
    scopes = granted_scopes(client, scope, patient=patient)
    token_grant = TokenGrant(client.client_id, scopes, patient, fhir_user or client.fhir_user)
    issued = issue_access_token(issuer.key, issuer.policy, token_grant, now=now)
    return TokenResponse(issued.access_token, issued.expires_in, scopes.text, patient)


def granted_scopes(client: Client, scope: str | None, *, patient: str | None) -> ScopeSet:
    """The requested scopes, if the client may have them (RFC 6749 §3.3, SMART scopes)."""
    if not scope or not scope.strip():
        raise OAuthError(OAuthErrorCode.INVALID_SCOPE, "scope is required")
    try:
        requested = parse_scopes(scope)
    except InvalidScopeError as exc:
        raise OAuthError(OAuthErrorCode.INVALID_SCOPE, str(exc)) from None
    if not requested.resource:
        raise OAuthError(OAuthErrorCode.INVALID_SCOPE, "scope names no FHIR resource access")
    refused = uncovered(parse_scopes(client.allowed_scopes), requested)
    if refused:
        message = f"not allowed for this client: {' '.join(refused)}"
        raise OAuthError(OAuthErrorCode.INVALID_SCOPE, message)
    if Context.PATIENT in requested.contexts() and not patient:
        message = "patient/ scopes need a patient context, and the client has none registered"
        raise OAuthError(OAuthErrorCode.INVALID_SCOPE, message)
    other = tuple(s for s in requested.other if s not in _NO_REFRESH_TOKENS)
    return ScopeSet(requested.resource, other)
