"""The one error hierarchy of batchd.

    BatchdError                    (500 api_error)
    ├── ConfigError                bad settings or config file; raised at start
    ├── StoreError
    │   ├── StoreUnavailable       (503) the database cannot be reached
    │   ├── BatchNotFound          (404 not_found_error)
    │   ├── InvalidBatchState      (400) e.g. delete while in_progress
    │   ├── IdempotencyConflict    (400) an Idempotency-Key reused with another body
    │   ├── WebhookNotFound        (404 not_found_error) no such webhook endpoint or event
    │   └── QuotaExceeded          (429 rate_limit_error) a create over its workspace's quota;
    │                              `retry_after` seconds go to the retry-after header
    ├── ApiError                   client-facing request errors
    │   ├── InvalidRequest         (400 invalid_request_error)
    │   ├── AuthenticationFailed   (401 authentication_error)
    │   ├── PermissionDenied       (403 permission_error)
    │   ├── RouteNotFound          (404 not_found_error)
    │   ├── Conflict               (409 invalid_request_error) e.g. cancel of an ended OpenAI batch;
    │   │                          never worth retrying (x-should-retry: false)
    │   ├── MethodNotAllowed       (405 invalid_request_error)
    │   ├── RequestTimeout         (408 timeout_error) the body did not arrive in time
    │   ├── RequestTooLarge        (413 request_too_large)
    │   └── UnsupportedMediaType   (415 invalid_request_error) a body that is not JSON
    ├── InvalidParams              one request's params are invalid: an errored result, never raised
    │   │                          past the engine
    │   └── InvalidLine            an OpenAI batch line its backend cannot run; `param` names the field
    └── BackendError               one backend call failed; `retryable` says whether to try again
        ├── BackendTimeout
        └── UpstreamStatus         the upstream answered an HTTP error; `body` keeps its JSON answer

Every class carries the HTTP `status` and Anthropic `error_type` it renders as; the message defaults
to the class docstring. `api/errors.py` is the only place that turns them into a response.
"""

from __future__ import annotations


class BatchdError(Exception):
    """Internal server error."""

    status: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class ConfigError(BatchdError):
    """Invalid configuration."""


class StoreError(BatchdError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """The database is unavailable; try again shortly."""

    status = 503
    error_type = "api_error"


class BatchNotFound(StoreError):
    """No message batch with that id exists."""

    status = 404
    error_type = "not_found_error"


class InvalidBatchState(StoreError):
    """The message batch is not in a state that allows this operation."""

    status = 400
    error_type = "invalid_request_error"


class QuotaExceeded(StoreError):
    """The workspace's quota is used up; try again later."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str | None = None, *, retry_after: int = 10) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiError(BatchdError):
    """The request could not be served.

    `param` and `code` name the field at fault and a machine-readable reason, for the OpenAI wire's
    error envelope (api/errors.py); Anthropic's envelope has no place for them.
    """

    def __init__(
        self, message: str | None = None, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class InvalidRequest(ApiError):
    """Invalid request."""

    status = 400
    error_type = "invalid_request_error"


class NotFound(ApiError):
    """No such object in this workspace (a file)."""

    status = 404
    error_type = "not_found_error"


class AuthenticationFailed(ApiError):
    """invalid x-api-key"""

    status = 401
    error_type = "authentication_error"


class PermissionDenied(ApiError):
    """Your API key does not have permission to use this resource."""

    status = 403
    error_type = "permission_error"


class RouteNotFound(ApiError):
    """Not found."""

    status = 404
    error_type = "not_found_error"


class Conflict(ApiError):
    """The object is not in a state that allows this operation."""

    status = 409
    error_type = "invalid_request_error"


class MethodNotAllowed(ApiError):
    """Method not allowed."""

    status = 405
    error_type = "invalid_request_error"


class RequestTimeout(ApiError):
    """The request body did not arrive in time."""

    status = 408
    error_type = "timeout_error"


class RequestTooLarge(ApiError):
    """Request exceeds the maximum allowed number of bytes."""

    status = 413
    error_type = "request_too_large"


class UnsupportedMediaType(ApiError):
    """The request body must be JSON (Content-Type: application/json)."""

    status = 415
    error_type = "invalid_request_error"


class InvalidParams(BatchdError):
    """The request's params are invalid."""

    status = 400
    error_type = "invalid_request_error"


class BackendError(BatchdError):
    """The model backend failed."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int = 500,
        error_type: str = "api_error",
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after = retry_after


class InvalidLine(InvalidParams):
    """An OpenAI batch line cannot be run on the backend its model routes to."""

    def __init__(self, message: str | None = None, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UpstreamStatus(BackendError):
    """The model backend answered with an HTTP error status."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int = 500,
        error_type: str = "api_error",
        retryable: bool = False,
        retry_after: float | None = None,
        body: object = None,
    ) -> None:
        super().__init__(
            message, status=status, error_type=error_type, retryable=retryable, retry_after=retry_after
        )
        self.body = body  #: the decoded JSON answer (an OpenAI line's error body); None if not JSON


class BackendTimeout(BackendError):
    """The model backend timed out."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, status=504, error_type="timeout_error", retryable=True)


class IdempotencyConflict(StoreError):
    """This Idempotency-Key was already used with a different request body."""

    status = 400
    error_type = "invalid_request_error"


class WebhookNotFound(StoreError):
    """No webhook endpoint or event with that id exists."""

    status = 404
    error_type = "not_found_error"
