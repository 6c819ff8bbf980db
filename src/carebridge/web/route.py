"""How a page fails: to the sign-in form, or to a page with a sentence, never a stack trace.

`PageRoute` wraps every page handler. A missing or expired session goes to the sign-in form; a
refusal (a token without a patient, a cross-site post, a scope that does not allow the page) is
a page saying so, with the status the API would give; anything unexpected is a 500 page and a
log line naming only the exception's type (messages can carry patient data). Refusals are
audited as the API's are (app.py audits refused /patient calls): in a transaction of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from carebridge.access.guard import record_refusal
from carebridge.access.sharing_endpoints import NotAPatientError
from carebridge.kit.errors import AppError
from carebridge.web import session
from carebridge.web.rendering import redirect, render, with_page_headers

log = logging.getLogger("carebridge.web")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

ONLY_A_PATIENT = (
    "Only a patient can use these pages",
    "You are signed in with an access token that does not belong to a patient (it has no "
    "patient context and its user is not a Patient). Sign out, then sign in with a patient's "
    "access token.",
)
CROSS_SITE = (
    "That request was refused",
    "It did not come from one of this site's own pages, so nothing was changed. Go back to the "
    "page, reload it, and try again.",
)
INVALID_FORM = ("That form was incomplete", "Go back, fill in the form, and send it again.")
UNEXPECTED = (
    "Something went wrong",
    "The server could not finish this request, and nothing was changed. Please try again later.",
)


class PageRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except session.SignInRequiredError as exc:
                await _audit(request, 401, "no valid session: sign-in required")
                response = _to_sign_in(request, exc.reason)
            except session.CrossSiteRequestError:
                await _audit(request, 403, "cross-site request refused")
                response = message(request, *CROSS_SITE, status=403)
            except AppError as exc:
                response = await _refused(request, exc)
            except (RequestValidationError, HTTPException) as exc:  # e.g. an unparsable body
                status = exc.status_code if isinstance(exc, HTTPException) else 400
                response = message(request, *INVALID_FORM, status=status)
            except Exception as exc:  # a page, not a stack trace; the type only in the log
                log.error("page failed: %s", type(exc).__name__)
                response = message(request, *UNEXPECTED, status=500)
            return with_page_headers(response)

        return page


def message(request: Request, title: str, text: str, status: int) -> Response:
    return render(request, "message.html", {"title": title, "text": text}, status=status)


async def _refused(request: Request, exc: AppError) -> Response:
    if exc.status in (401, 403):
        await _audit(request, exc.status, exc.message)
    if isinstance(exc, NotAPatientError):
        return message(request, *ONLY_A_PATIENT, status=403)
    if exc.status >= 500:
        log.error("page failed: %s %s", exc.status, exc.code)
        return message(request, *UNEXPECTED, status=exc.status)
    sentence = exc.message[:1].upper() + exc.message[1:].rstrip(".") + "."
    return message(request, "That could not be done", sentence, status=exc.status)


def _to_sign_in(request: Request, reason: str) -> Response:
    target = "/web/sign-in" + ("?reason=expired" if reason != "missing" else "")
    response = redirect(request, target)
    if reason != "missing":
        session.end(response, request)
    return response


async def _audit(request: Request, status: int, reason: str) -> None:
    await run_in_threadpool(record_refusal, request, status, reason)
