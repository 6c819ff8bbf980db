"""Access tokens: the claims issued, and why verification refuses a token."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import jwt
import pytest

from carebridge.access.keys import SigningKey, load_signing_key
from carebridge.access.scopes import Context, Interaction, parse_scopes
from carebridge.access.tokens import (
    AccessContext,
    TokenError,
    TokenErrorReason,
    TokenGrant,
    TokenPolicy,
    issue_access_token,
    verify_access_token,
)
from carebridge.kit.clock import utc_now

POLICY = TokenPolicy("https://cb.example", "https://cb.example/fhir", timedelta(minutes=15))
GRANT = TokenGrant(
    "client-1", parse_scopes("patient/Observation.rs openid"), "pat-1", "Practitioner/7"
)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return load_signing_key(None, "ES256", tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return load_signing_key(None, "ES256", tmp_path_factory.mktemp("other"))


def _issue(key: SigningKey, policy: TokenPolicy = POLICY, *, ago: timedelta = timedelta()) -> str:
    return issue_access_token(key, policy, GRANT, now=utc_now() - ago).access_token


class TestIssue:
    def test_claims_follow_smart_and_rfc_9068(self, key: SigningKey) -> None:
        issued = issue_access_token(key, POLICY, GRANT, now=utc_now())
        claims = jwt.decode(issued.access_token, options={"verify_signature": False})
        assert claims["iss"] == "https://cb.example"
        assert claims["aud"] == "https://cb.example/fhir"
        assert claims["sub"] == claims["client_id"] == "client-1"
        assert claims["scope"] == "patient/Observation.rs openid"
        assert (claims["patient"], claims["fhirUser"]) == ("pat-1", "Practitioner/7")
        assert claims["exp"] - claims["iat"] == 900 == issued.expires_in
        assert claims["jti"] == issued.jti
        header = jwt.get_unverified_header(issued.access_token)
        assert (header["alg"], header["kid"], header["typ"]) == ("ES256", key.kid, "at+jwt")

    def test_context_claims_are_left_out_when_unset(self, key: SigningKey) -> None:
        grant = TokenGrant("c", parse_scopes("system/*.rs"))
        token = issue_access_token(key, POLICY, grant, now=utc_now()).access_token
        claims = jwt.decode(token, options={"verify_signature": False})
        assert "patient" not in claims
        assert "fhirUser" not in claims

    def test_every_token_has_its_own_jti(self, key: SigningKey) -> None:
        now = utc_now()
        first = issue_access_token(key, POLICY, GRANT, now=now)
        assert first.jti != issue_access_token(key, POLICY, GRANT, now=now).jti


class TestVerify:
    def test_a_good_token_gives_the_access_context(self, key: SigningKey) -> None:
        ctx = verify_access_token(_issue(key), key, POLICY)
        assert isinstance(ctx, AccessContext)
        assert (ctx.client_id, ctx.patient, ctx.fhir_user) == (
            "client-1",
            "pat-1",
            "Practitioner/7",
        )
        assert ctx.scopes == GRANT.scopes
        assert ctx.decide(Interaction.SEARCH, "Observation").context is Context.PATIENT
        assert not ctx.decide(Interaction.CREATE, "Observation").allowed

    def test_the_context_is_frozen(self, key: SigningKey) -> None:
        ctx = verify_access_token(_issue(key), key, POLICY)
        with pytest.raises(AttributeError):
            ctx.patient = "other"  # type: ignore[misc]

    def test_leeway_accepts_a_token_just_expired(self, key: SigningKey) -> None:
        token = _issue(key, ago=timedelta(minutes=15, seconds=10))
        assert verify_access_token(token, key, POLICY).client_id == "client-1"

    @pytest.mark.parametrize(
        ("case", "reason"),
        [
            ("missing", TokenErrorReason.MISSING),
            ("malformed", TokenErrorReason.MALFORMED),
            ("garbage_payload", TokenErrorReason.MALFORMED),
            ("other_key", TokenErrorReason.BAD_SIGNATURE),
            ("tampered", TokenErrorReason.BAD_SIGNATURE),
            ("hs256", TokenErrorReason.BAD_SIGNATURE),
            ("expired", TokenErrorReason.EXPIRED),
            ("wrong_audience", TokenErrorReason.WRONG_AUDIENCE),
            ("wrong_issuer", TokenErrorReason.WRONG_ISSUER),
            ("bad_scope", TokenErrorReason.MALFORMED),
            ("no_scope", TokenErrorReason.MALFORMED),
        ],
    )
    def test_each_failure_has_its_own_reason(
        self, key: SigningKey, other_key: SigningKey, case: str, reason: TokenErrorReason
    ) -> None:
        token = _bad_token(case, key, other_key)
        with pytest.raises(TokenError) as caught:
            verify_access_token(token, key, POLICY)
        assert caught.value.reason is reason


def _bad_token(case: str, key: SigningKey, other_key: SigningKey) -> str | None:
    if case == "missing":
        return None
    if case == "malformed":
        return "not-a-jwt"
    if case == "garbage_payload":
        headers = {"kid": key.kid}
        return jwt.PyJWS().encode(b"not json", key.private_key, key.algorithm, headers=headers)
    if case == "other_key":
        return _issue(replace(other_key, kid=key.kid))
    if case == "tampered":
        header, payload, signature = _issue(key).split(".")
        return f"{header}.{payload}.{signature[:-4]}AAAA"
    if case == "hs256":
        return jwt.encode({"sub": "x"}, "secret-long-enough-for-hmac-256-bits!", "HS256")
    if case == "expired":
        return _issue(key, ago=timedelta(minutes=20))
    if case == "wrong_audience":
        return _issue(key, replace(POLICY, audience="https://elsewhere.example/fhir"))
    if case == "wrong_issuer":
        return _issue(key, replace(POLICY, issuer="https://evil.example"))
    claims: dict[str, object] = {"iss": POLICY.issuer, "aud": POLICY.audience, "sub": "c"}
    claims["jti"] = "j"
    now = int(utc_now().timestamp())
    claims |= {"iat": now, "exp": now + 60}
    if case == "bad_scope":
        claims["scope"] = "admin/everything"
    headers = {"kid": key.kid}
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)
