"""The patient's pages: sign in, who accessed my record, and with whom I share it.

    GET  /web                            to the access log (or to sign in)
    GET  /web/sign-in, POST /web/sign-in  a form taking an access token (session.py)
    POST /web/sign-out                    ends the session
    GET  /web/patient/access              who accessed my record (GET /patient/access-log)
    GET  /web/patient/sharing             my decisions and the defaults (GET /patient/sharing)
    POST /web/patient/sharing             permit or deny one actor (PUT /patient/sharing/…)
    POST /web/patient/sharing/withdraw    withdraw a decision (DELETE /patient/sharing/…)

Each page calls the same function as its JSON endpoint, with the guard built from the session
cookie, so it is authorized, confined and audited the same way. Posts answer an HTMX request
with the decisions fragment (swapped in place) and a plain form post with a redirect, so the
pages work without JavaScript too. Errors become a sentence on the page (route.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from carebridge.access.sharing import SHARABLE_ACTORS
from carebridge.access.sharing_endpoints import (
    SharingChoice,
    patient_of,
    read_access_log,
    read_sharing,
    record_choice,
    withdraw_choice,
)
from carebridge.access.tokens import TokenError
from carebridge.kit.errors import AppError
from carebridge.web import session, views
from carebridge.web.rendering import htmx_request, redirect, render, static_files
from carebridge.web.route import PageRoute

ACCESS_PAGE = "/web/patient/access"
SHARING_PAGE = "/web/patient/sharing"
LOG_SIZE = 100

router = APIRouter(prefix="/web", route_class=PageRoute, include_in_schema=False)
static = static_files()

Text = Annotated[str, Form()]


@router.get("")
async def home(request: Request) -> Response:
    target = ACCESS_PAGE if request.cookies.get(session.COOKIE) else "/web/sign-in"
    return RedirectResponse(target, status_code=303)


@router.get("/sign-in")
async def sign_in_form(request: Request, reason: str = "") -> Response:
    notices = {
        "expired": "Your session has ended. Sign in again.",
        "signed-out": "You have signed out.",
    }
    return render(request, "sign_in.html", {"notice": notices.get(reason), "csrf": ""})


@router.post("/sign-in")
async def sign_in(request: Request, token: Text = "") -> Response:
    session.check_same_origin(request)
    pasted = session.token_from_form(token)
    try:
        ctx = session.verify(request, pasted or None)
    except TokenError as exc:
        problem = session.SIGN_IN_PROBLEMS[exc.reason]
        return render(request, "sign_in.html", {"problem": problem, "csrf": ""}, status=401)
    response = RedirectResponse(ACCESS_PAGE, status_code=303)
    session.start(response, request, pasted, ctx)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, csrf_token: Text = "") -> Response:
    if request.cookies.get(session.COOKIE):
        session.check_csrf(request, csrf_token)
    response = redirect(request, "/web/sign-in?reason=signed-out")
    session.end(response, request)
    return response


@router.get("/patient/access")
async def access_page(request: Request) -> Response:
    await session.signed_in(request)
    patient = patient_of(request)
    log = await read_access_log(request, LOG_SIZE)
    rows = views.log_rows(log["entries"], patient)
    return render(request, "access.html", {"rows": rows, "size": LOG_SIZE, "page": "access"})


@router.get("/patient/sharing")
async def sharing_page(request: Request) -> Response:
    await session.signed_in(request)
    patient_of(request)
    return await _sharing(request)


@router.post("/patient/sharing")
async def choose(
    request: Request,
    actor_type: Text = "",
    actor_id: Text = "",
    access: Text = "",
    types: Text = "",
    purpose: Text = "",
    csrf_token: Text = "",
) -> Response:
    await session.signed_in(request)
    session.check_csrf(request, csrf_token)
    patient_of(request)
    try:
        choice = SharingChoice.model_validate(
            {
                "access": access,
                "types": views.parse_types(types),
                "purpose": purpose.strip() or None,
            }
        )
    except ValidationError:
        return await _changed(request, None, "Choose whether to share your record or not.")
    try:
        result = await record_choice(request, actor_type, actor_id.strip(), choice)
    except AppError as exc:
        return await _changed(request, None, _refusal(exc))
    verb = "may now see" if choice.access == "permit" else "may no longer see"
    return await _changed(request, result, f"Saved: {actor_type}/{actor_id.strip()} {verb} it.")


@router.post("/patient/sharing/withdraw")
async def withdraw(
    request: Request, actor_type: Text = "", actor_id: Text = "", csrf_token: Text = ""
) -> Response:
    await session.signed_in(request)
    session.check_csrf(request, csrf_token)
    patient_of(request)
    try:
        result = await withdraw_choice(request, actor_type, actor_id)
    except AppError as exc:
        return await _changed(request, None, _refusal(exc))
    notice = f"Withdrawn: the default applies to {actor_type}/{actor_id} again."
    return await _changed(request, result, notice)


async def _changed(request: Request, result: dict[str, Any] | None, text: str) -> Response:
    """After a post: the decisions fragment for HTMX; a redirect (or the page with the error)
    for a plain form post."""
    failed = result is None
    if not htmx_request(request):
        if not failed:
            return RedirectResponse(SHARING_PAGE, status_code=303)
        return await _sharing(request, {"kind": "error", "text": text}, status=400)
    if result is None:
        result = await read_sharing(request)
    context = {
        "decisions": views.decision_rows(result["decisions"]),
        "message": {"kind": "error" if failed else "done", "text": text},
    }
    return render(request, "_decisions.html", context)


async def _sharing(
    request: Request, message: dict[str, str] | None = None, status: int = 200
) -> Response:
    summary = await read_sharing(request)
    context = {
        "page": "sharing",
        "defaults": views.default_rows(summary["defaults"]),
        "decisions": views.decision_rows(summary["decisions"]),
        "actor_types": {t: views.ACTOR_TYPES.get(t, t) for t in SHARABLE_ACTORS},
        "purposes": {c: views.purpose_label(c) for c in views.CHOOSABLE_PURPOSES},
        "message": message,
    }
    return render(request, "sharing.html", context, status=status)


def _refusal(exc: AppError) -> str:
    """A refused change as a sentence: the API's own message, which names what was wrong."""
    if exc.status >= 500:
        return "Something went wrong on our side; nothing was changed. Please try again."
    message = exc.message[:1].upper() + exc.message[1:]
    return f"That was not saved. {message.rstrip('.')}."
