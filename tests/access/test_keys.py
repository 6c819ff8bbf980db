"""The token signing key: configured PEM or a generated development key, published as a JWKS."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from carebridge.access.keys import SigningKeyError, jwk_thumbprint, load_signing_key
from carebridge.config import Settings

REPO = Path(__file__).resolve().parents[2]


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestDevelopmentKey:
    def test_is_generated_once_private_and_reused(self, tmp_path: Path) -> None:
        key_dir = tmp_path / "keys"
        first = load_signing_key(None, "ES256", key_dir)
        second = load_signing_key(None, "ES256", key_dir)
        files = list(key_dir.iterdir())
        assert [f.name for f in files] == ["dev-token-signing-es256.pem"]
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        assert first.kid == second.kid

    def test_rs256_key_is_rsa_2048(self, tmp_path: Path) -> None:
        key = load_signing_key(None, "RS256", tmp_path)
        assert isinstance(key.private_key, rsa.RSAPrivateKey)
        assert key.private_key.key_size >= 2048

    def test_default_location_is_ignored_by_git(self) -> None:
        location = Settings().token_key_dir / "dev-token-signing-rs256.pem"
        result = subprocess.run(["git", "check-ignore", "-q", str(location)], cwd=REPO, check=False)
        assert result.returncode == 0, f"{location} would be committed"


class TestConfiguredKey:
    def test_a_pem_file_is_used_as_is(self, tmp_path: Path) -> None:
        private = ec.generate_private_key(ec.SECP256R1())
        path = tmp_path / "signing.pem"
        path.write_bytes(_pem(private))
        key = load_signing_key(path, "ES256", tmp_path / "unused")
        assert key.public_jwk()["x"] == key.jwks()["keys"][0]["x"]
        assert not (tmp_path / "unused").exists()

    @pytest.mark.parametrize(
        ("algorithm", "private"),
        [
            ("RS256", ec.generate_private_key(ec.SECP256R1())),
            ("ES256", ec.generate_private_key(ec.SECP384R1())),
            ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        ],
    )
    def test_a_key_unfit_for_the_algorithm_is_refused(
        self, tmp_path: Path, algorithm: str, private: rsa.RSAPrivateKey
    ) -> None:
        path = tmp_path / "signing.pem"
        path.write_bytes(_pem(private))
        with pytest.raises(SigningKeyError):
            load_signing_key(path, algorithm, tmp_path)

    def test_not_a_pem_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "signing.pem"
        path.write_text("not a key")
        with pytest.raises(SigningKeyError, match="PEM"):
            load_signing_key(path, "RS256", tmp_path)

    def test_an_unknown_algorithm_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(SigningKeyError, match="algorithm"):
            load_signing_key(None, "HS256", tmp_path)


class TestPublication:
    def test_jwks_has_public_members_only(self, tmp_path: Path) -> None:
        key = load_signing_key(None, "ES256", tmp_path)
        (jwk,) = key.jwks()["keys"]
        assert jwk["kid"] == key.kid
        assert (jwk["alg"], jwk["use"], jwk["kty"], jwk["crv"]) == ("ES256", "sig", "EC", "P-256")
        assert "d" not in jwk

    def test_thumbprint_matches_rfc_7638_example(self) -> None:
        # RFC 7638 §3.1: the thumbprint of the example RSA key.
        jwk = {
            "kty": "RSA",
            "e": "AQAB",
            "n": (
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
                "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
                "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08"
                "qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a"
                "wapJzKnqDKgw"
            ),
            "alg": "RS256",
            "kid": "2011-04-29",
        }
        assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
