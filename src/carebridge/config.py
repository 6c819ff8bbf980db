"""Settings: the only module that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///carebridge.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREBRIDGE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = "http://127.0.0.1:8000"
    export_dir: Path = Path("var/export")
    # Feed files uploaded with `Prefer: respond-async` wait here until their job has run.
    upload_dir: Path = Path("var/uploads")
    max_bundle_entries: int = 10_000
    max_request_bytes: int = 64 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1_000
    # Access tokens (docs/security.md). No key file: a development key is generated under
    # token_key_dir on first use (var/ is git-ignored). In production, point at a PEM private key.
    token_signing_key: Path | None = None
    token_signing_algorithm: Literal["RS256", "ES256"] = "RS256"
    token_key_dir: Path = Path("var/keys")
    access_token_lifetime_seconds: int = 900
    # Patient Consent defaults per purpose (docs/security.md): "opt-out" shares a patient's data
    # with their care relationships unless a Consent denies it; "opt-in" only where one permits.
    # A folder of operator device templates (docs/devices.md), matched before the built-in ones.
    device_templates_dir: Path | None = None
    consent_treatment: Literal["opt-in", "opt-out"] = "opt-out"
    consent_payment: Literal["opt-in", "opt-out"] = "opt-in"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; explicit overrides (e.g. `--db`) take precedence."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
