"""CTS errors: one exception type carrying the wire error code, message and HTTP status.

Every 4xx/5xx the API answers is `{"error_code": "CTS.<4 digits>", "error_msg": "..."}`; the codes
are listed in docs/ARCHITECTURE.md ("Error codes").
"""

from __future__ import annotations


class CtsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error_code": self.code, "error_msg": self.message}


def invalid_parameter(name: str, why: str) -> CtsError:
    return CtsError(400, "CTS.0001", f"Invalid parameter '{name}': {why}")


def malformed_body(why: str) -> CtsError:
    return CtsError(400, "CTS.0002", f"Malformed request body: {why}")


def body_too_large(limit: int) -> CtsError:
    return CtsError(413, "CTS.0003", f"Request body is larger than {limit} bytes")


def too_many_traces(limit: int) -> CtsError:
    return CtsError(400, "CTS.0004", f"At most {limit} traces can be reported in one call")


def invalid_trace_field(field: str, why: str) -> CtsError:
    return CtsError(400, "CTS.0005", f"Invalid trace field '{field}': {why}")


def project_not_found(project_id: str) -> CtsError:
    return CtsError(404, "CTS.0006", f"Project '{project_id}' is not known to OpenCTS")


def invalid_marker() -> CtsError:
    return CtsError(
        400, "CTS.0007", "Invalid 'next' marker: use meta_data.marker of a previous page"
    )


def unsupported_media_type(content_type: str) -> CtsError:
    return CtsError(415, "CTS.0008", f"Unsupported media type '{content_type}'")


def not_found(path: str) -> CtsError:
    return CtsError(404, "CTS.0009", f"No such resource: {path}")


def method_not_allowed(method: str) -> CtsError:
    return CtsError(405, "CTS.0010", f"Method {method} is not allowed on this resource")


def storage_unavailable() -> CtsError:
    return CtsError(503, "CTS.0503", "Trace storage is temporarily unavailable; retry later")


def internal_error() -> CtsError:
    return CtsError(500, "CTS.0500", "Internal error; the request id identifies it in the logs")
