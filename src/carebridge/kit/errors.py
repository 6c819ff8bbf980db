"""One error family for the application; every error leaving /fhir becomes an OperationOutcome.

Issue codes come from the FHIR R4 `issue-type` value set (http://hl7.org/fhir/valueset-issue-type.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # FHIR issue-type code, e.g. invalid, not-found, conflict
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


@dataclass
class AppError(Exception):
    """An error with an HTTP status and one or more FHIR issues."""

    status: int
    code: str
    message: str
    expression: tuple[str, ...] = ()
    extra_issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def issues(self) -> list[Issue]:
        return [Issue("error", self.code, self.message, self.expression), *self.extra_issues]

    def to_operation_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def information_outcome(message: str, code: str = "informational") -> dict[str, Any]:
    return operation_outcome([Issue("information", code, message)])


class InvalidRequestError(AppError):
    def __init__(self, message: str, *, expression: tuple[str, ...] = (), status: int = 400):
        super().__init__(status, "invalid", message, expression)


class ValidationFailedError(AppError):
    def __init__(self, issues: list[Issue]):
        first = issues[0] if issues else Issue("error", "structure", "invalid resource")
        super().__init__(400, first.code, first.diagnostics, first.expression, issues[1:])


class NotFoundError(AppError):
    def __init__(self, message: str):
        super().__init__(404, "not-found", message)


class ForbiddenError(AppError):
    def __init__(self, message: str):
        super().__init__(403, "forbidden", message)


class GoneError(AppError):
    def __init__(self, message: str):
        super().__init__(410, "deleted", message)


class ConflictError(AppError):
    def __init__(self, message: str, status: int = 409):
        super().__init__(status, "conflict", message)


class PreconditionFailedError(AppError):
    def __init__(self, message: str):
        super().__init__(412, "conflict", message)


class NotSupportedError(AppError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(status, "not-supported", message)


class TooCostlyError(AppError):
    def __init__(self, message: str):
        super().__init__(413, "too-costly", message)
