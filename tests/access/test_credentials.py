"""Client secrets: generated, stored as salted scrypt hashes, compared in constant time."""

from __future__ import annotations

import pytest

from carebridge.access.credentials import (
    SecretHash,
    hash_secret,
    new_client_id,
    new_client_secret,
    verify_secret,
)


class TestSecrets:
    def test_generated_secrets_are_long_unique_and_url_safe(self) -> None:
        secrets = {new_client_secret() for _ in range(20)}
        assert len(secrets) == 20
        assert all(len(s) >= 43 and s.replace("-", "").replace("_", "").isalnum() for s in secrets)

    def test_client_ids_are_unique(self) -> None:
        assert new_client_id() != new_client_id()

    def test_a_hash_verifies_its_secret_only(self) -> None:
        stored = hash_secret("correct horse")
        assert verify_secret("correct horse", stored)
        assert not verify_secret("correct horsE", stored)
        assert not verify_secret("", stored)

    def test_the_hash_never_contains_the_secret(self) -> None:
        stored = hash_secret("s3cret-value")
        assert "s3cret-value" not in stored.hash
        assert stored.hash.startswith("scrypt$16384$8$1$")

    def test_each_hash_has_its_own_salt(self) -> None:
        first, second = hash_secret("same"), hash_secret("same")
        assert first.salt != second.salt
        assert first.hash != second.hash

    def test_a_given_salt_gives_a_stable_hash(self) -> None:
        assert hash_secret("same", b"0" * 16) == hash_secret("same", b"0" * 16)

    @pytest.mark.parametrize(
        "stored",
        [
            SecretHash("", ""),
            SecretHash("bcrypt$1$1$1$00", "00"),
            SecretHash("scrypt$x$8$1$00", "00"),
            SecretHash("scrypt$16384$8$1$zz", "00"),
            SecretHash("scrypt$16384$8$1$00", "not-hex"),
        ],
    )
    def test_malformed_stored_values_never_match(self, stored: SecretHash) -> None:
        assert not verify_secret("anything", stored)
