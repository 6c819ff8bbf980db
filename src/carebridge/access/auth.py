"""Bearer token authentication (RFC 6750) and SMART scope checks, as FastAPI dependencies.

`access_context` reads `Authorization: Bearer <token>` and returns the verified `AccessContext`;
failures become 401 OperationOutcomes with a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3:
no error code when no token was sent, `error="invalid_token"` otherwise). `require(...)` and
`authorize(...)` add the SMART scope check: 403 with `error="insufficient_scope"` (§3.1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from carebridge.access.scopes import Context, Decision, Interaction
from carebridge.access.service import TokenIssuer, token_issuer
from carebridge.access.tokens import (
    AccessContext,
    TokenError,
    TokenErrorReason,
    verify_access_token,
)
from carebridge.kit.errors import AppError

REALM = "carebridge"
INTERACTION_NAMES = {
    Interaction.CREATE: "create",
    Interaction.READ: "read",
    Interaction.UPDATE: "update",
    Interaction.DELETE: "delete",
    Interaction.SEARCH: "search",
}
_ISSUE_CODES = {TokenErrorReason.MISSING: "login", TokenErrorReason.EXPIRED: "expired"}


def issuer_of(request: Request) -> TokenIssuer:
    """The app's token issuer (signing key, URLs), loaded once and kept on `app.state`."""
    state = request.app.state
    issuer: TokenIssuer | None = getattr(state, "access_token_issuer", None)
    if issuer is None:
        issuer = token_issuer(state.settings)
        state.access_token_issuer = issuer
    return issuer


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (RFC 6750 §2.1), None if no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(
            TokenErrorReason.MALFORMED, "the Authorization header must be 'Bearer <token>'"
        )
    return token.strip()


async def access_context(request: Request) -> AccessContext:
    """Dependency: the verified caller, or a 401 OperationOutcome."""
    issuer = issuer_of(request)
    try:
        return verify_access_token(bearer_token(request), issuer.key, issuer.policy)
    except TokenError as exc:
        raise unauthorized(exc) from None


def unauthorized(exc: TokenError) -> AppError:
    challenge = f'Bearer realm="{REALM}"'
    if exc.reason is not TokenErrorReason.MISSING:
        description = _quotable(exc.message)
        challenge += f', error="invalid_token", error_description="{description}"'
    code = _ISSUE_CODES.get(exc.reason, "security")
    return AppError(401, code, exc.message, headers={"WWW-Authenticate": challenge})


def forbidden(interaction: Interaction, resource_type: str) -> AppError:
    needed = " ".join(f"{c.value}/{resource_type}.{interaction.value}" for c in Context)
    message = (
        f"the access token's scopes do not allow {INTERACTION_NAMES[interaction]} "
        f"on {resource_type}; one of these scopes is needed: {needed}"
    )
    challenge = f'Bearer realm="{REALM}", error="insufficient_scope", scope="{needed}"'
    return AppError(403, "forbidden", message, headers={"WWW-Authenticate": challenge})


def authorize(ctx: AccessContext, interaction: Interaction, resource_type: str) -> Decision:
    """The scope decision for this request, or a 403 OperationOutcome if it is not allowed."""
    decision = ctx.decide(interaction, resource_type)
    if not decision.allowed:
        raise forbidden(interaction, resource_type)
    return decision


def require(
    interaction: Interaction, resource_type: str | None = None
) -> Callable[[Request, AccessContext], Awaitable[AccessContext]]:
    """Dependency factory: the caller, once its scopes allow `interaction` on the resource type.

    Without `resource_type` the route's `{resource_type}` path parameter is used, so one
    dependency serves `GET /fhir/{resource_type}/{id}` for every type.
    """

    async def dependency(
        request: Request, ctx: Annotated[AccessContext, Depends(access_context)]
    ) -> AccessContext:
        target = resource_type or request.path_params.get("resource_type")
        if not target:
            raise AppError(500, "exception", "the route names no resource type to authorize")
        authorize(ctx, interaction, str(target))
        return ctx

    return dependency


def _quotable(text: str) -> str:
    """RFC 6750 §3: error_description is printable ASCII without `"` and `\\`."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')
