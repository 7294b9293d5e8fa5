"""One exception type per failure kind. They are mapped to HTTP once, in `leadflow.web`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class LeadFlowError(Exception):
    """Base of every expected failure. `detail` is safe to show to the caller."""

    status = 500
    title = "Internal error"
    kind = "internal"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class MalformedBody(LeadFlowError):
    status, title, kind = 400, "Malformed body", "malformed-body"


class SignatureInvalid(LeadFlowError):
    status, title, kind = 401, "Signature invalid", "signature-invalid"


class Forbidden(LeadFlowError):
    status, title, kind = 403, "Forbidden", "forbidden"


class NotFound(LeadFlowError):
    status, title, kind = 404, "Not found", "not-found"


class MethodNotAllowed(LeadFlowError):
    status, title, kind = 405, "Method not allowed", "method-not-allowed"


class PayloadTooLarge(LeadFlowError):
    status, title, kind = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(LeadFlowError):
    status, title, kind = 415, "Unsupported media type", "unsupported-media-type"


class ValidationFailed(LeadFlowError):
    status, title, kind = 422, "Validation failed", "validation-failed"

    def __init__(self, errors: list[FieldError], detail: str = "") -> None:
        self.errors = errors
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        super().__init__(detail or f"The submission is not valid: {summary}")


class ConfigurationError(LeadFlowError):
    """A deployment problem (missing secret, broken form registry): 500, and an alarm, not the caller's fault."""

    status, title, kind = 500, "Configuration error", "configuration-error"


class StoreUnavailable(LeadFlowError):
    """DynamoDB could not take the write after retries: the caller should retry (503 + Retry-After)."""

    status, title, kind = 503, "Temporarily unavailable", "unavailable"


class UpstreamUnavailable(LeadFlowError):
    """A service the request depends on (e.g. a CAPTCHA siteverify API) did not answer: retry (503 + Retry-After)."""

    status, title, kind = 503, "Temporarily unavailable", "unavailable"


class ConfigProblems(ConfigurationError):
    """A YAML configuration refused at load: `problems` are 'file:line: field.path: message' lines."""

    what = "configuration"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"The {self.what} {source} is not valid:\n" + "\n".join(problems))


class ScoringModelInvalid(ConfigProblems):
    """The scoring model refused at load: `problems` are 'file:line: field.path: message' lines."""

    what = "scoring model"


class StageTransitionForbidden(LeadFlowError):
    """A lifecycle move the funnel does not allow (backwards, or out of `recycled` other than to `lead`)."""

    status, title, kind = 409, "Stage transition not allowed", "stage-transition-forbidden"


class BadRequest(LeadFlowError):
    """A malformed query parameter (e.g. an edited or foreign timeline cursor, a limit out of range)."""

    status, title, kind = 400, "Bad request", "bad-request"


class JourneyConfigInvalid(ConfigProblems):
    """The journeys configuration refused at load: `problems` are 'file:line: field.path: message' lines."""

    what = "journeys configuration"


class RoutingConfigInvalid(ConfigProblems):
    """The routing rules refused at load: `problems` are 'file:line: field.path: message' lines."""

    what = "routing configuration"


class CrmFeedbackConfigInvalid(ConfigProblems):
    """The CRM feedback configuration refused at load: 'file:line: field.path: message' lines."""

    what = "CRM feedback configuration"


class FunnelConfigInvalid(ConfigProblems):
    """The funnel configuration (UTM rules, targets, currency) refused at load: 'file:line: field: message'."""

    what = "funnel configuration"


class ReportQueryInvalid(BadRequest):
    """A report asked for an unknown dimension or attribution, or a bad date range: 400 naming the fields."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
