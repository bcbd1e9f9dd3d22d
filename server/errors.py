"""Client errors as FHIR OperationOutcomes.

Every failure a client can cause is raised as a FhirError and turned into an
OperationOutcome with the right status by the app's exception handlers; nothing else
reaches the wire, so no stack trace ever does.
"""

from __future__ import annotations

# HTTP status -> OperationOutcome.issue.code (FHIR IssueType)
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
}


class FhirError(Exception):
    """A request carebridge will not carry out, and why."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: list[str] | None = None,
        headers: dict[str, str] | None = None,
        severity: str = "error",
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or ISSUE_CODES.get(status, "processing")
        self.expression = expression
        self.headers = headers or {}
        self.severity = severity

    def outcome(self) -> dict:
        return operation_outcome(self.diagnostics, self.code, self.severity, self.expression)


def operation_outcome(
    diagnostics: str,
    code: str = "informational",
    severity: str = "information",
    expression: list[str] | None = None,
) -> dict:
    issue: dict = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def not_found(resource_type: str, rid: str) -> FhirError:
    # The same words whether the resource is missing or not disclosed (rule 8).
    return FhirError(404, f"{resource_type}/{rid} is not known to this server")
