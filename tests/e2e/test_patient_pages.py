"""A patient signs in with a token, reads who accessed their record, shares it with their payer
and withdraws that again, in a real browser against the real server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.access.consent_population import visible_ids
from tests.conftest import bearer
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.browser


def screenshot(page: Any, name: str, tmp_path: Path) -> None:
    """Into tmp_path; also into $CAREBRIDGE_SCREENSHOT_DIR (docs/img refreshes the docs)."""
    targets = [tmp_path]
    if os.environ.get("CAREBRIDGE_SCREENSHOT_DIR"):
        targets.append(Path(os.environ["CAREBRIDGE_SCREENSHOT_DIR"]))
    for directory in targets:
        page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def test_sign_in_read_the_log_share_withdraw_and_sign_out(
    page: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    settings = live_server.settings
    pharmacist = bearer(settings, "user/*.rs", fhir_user="Practitioner/pharm")
    payer = bearer(settings, "user/*.rs", fhir_user="Organization/payer")
    patient_token = bearer(settings, "patient/*.cruds", patient="ann")["Authorization"][7:]
    emergency = {**pharmacist, "X-Purpose-Of-Use": "ETREAT"}
    with live_server.client() as api:
        assert api.get("/fhir/Observation/obs-ann", headers=pharmacist).status_code == 200
        assert api.get("/fhir/Condition/cond-ann", headers=emergency).status_code == 200
        assert visible_ids(api, payer, "/fhir/Observation") == set()

    # Pages need a session: the browser lands on the sign-in form.
    page.goto("/web/patient/access")
    expect(page).to_have_url(f"{live_server.url}/web/sign-in")
    page.get_by_label("Access token").fill("not a token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That is not an access token")
    screenshot(page, "web-sign-in", tmp_path)
    page.get_by_label("Access token").fill(patient_token)
    page.get_by_role("button", name="Sign in").click()

    # The access log shows the pharmacist's read made through the API above.
    expect(page).to_have_url(f"{live_server.url}/web/patient/access")
    expect(page.get_by_role("heading", name="Who accessed my record")).to_be_visible()
    rows = page.get_by_role("row")
    read = rows.filter(has_text="Practitioner/pharm").filter(has_text="Observation")
    for cell in ("viewed", "treatment (TREAT)", "allowed", "no"):
        expect(read).to_contain_text(cell)
    emergency_row = rows.filter(has_text="emergency treatment (ETREAT)")
    expect(emergency_row).to_contain_text("Condition")
    expect(emergency_row).to_contain_text("yes: emergency override")
    screenshot(page, "web-access", tmp_path)

    # Share Observations with the payer: the decisions list changes without a reload.
    page.get_by_role("link", name="Who I share it with").click()
    expect(page.get_by_text("You have made no decisions yet")).to_be_visible()
    page.evaluate("window.carebridgeNotReloaded = true")
    page.get_by_label("With whom").select_option("Organization")
    page.get_by_label("Their id").fill("payer")
    page.get_by_label("Share my record with them", exact=True).check()
    page.get_by_label("Only these kinds of record (optional)").fill("Observation")
    page.get_by_label("Only for this purpose (optional)").select_option("HPAYMT")
    page.get_by_role("button", name="Save my decision").click()
    decisions = page.locator("#decisions")
    expect(decisions.get_by_role("status")).to_contain_text("Saved: Organization/payer")
    expect(decisions).to_contain_text(
        "Organization/payer may see your Observation records for payment (HPAYMT)."
    )
    assert page.evaluate("window.carebridgeNotReloaded") is True
    with live_server.client() as api:
        seen = visible_ids(api, payer, "/fhir/Observation")
    assert seen == {"Observation/obs-ann"}
    screenshot(page, "web-sharing", tmp_path)

    # A refused choice is a sentence in the same place.
    page.get_by_label("Their id").fill("payer")
    page.get_by_label("Only these kinds of record (optional)").fill("Nope")
    page.get_by_role("button", name="Save my decision").click()
    expect(decisions.get_by_role("alert")).to_contain_text("Not FHIR resource types: Nope")

    # Withdraw it: back to the default, still without a reload.
    page.get_by_role("button", name="Withdraw the decision about Organization/payer").click()
    expect(decisions.get_by_role("status")).to_contain_text("Withdrawn")
    expect(decisions).to_contain_text("You have made no decisions yet")
    assert page.evaluate("window.carebridgeNotReloaded") is True
    with live_server.client() as api:
        assert visible_ids(api, payer, "/fhir/Observation") == set()

    # Sign out: the session is gone.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You have signed out.")
    page.goto("/web/patient/sharing")
    expect(page).to_have_url(f"{live_server.url}/web/sign-in")
