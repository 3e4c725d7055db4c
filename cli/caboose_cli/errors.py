"""The CLI's errors and the exit codes scripts can rely on.

Every failure a user can cause or meet (an API refusal, a missing login, an unreachable host) is a
``CliError``: ``main.py`` prints its message on stderr and exits with its code, so no command ever
shows a traceback. The codes are part of the CLI's contract (documented in ``cli/README.md``);
never renumber them.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # an API error not listed below, a failed deployment, an unreachable host
    USAGE = 2  # bad arguments or input (also the API's 400/422)
    NOT_AUTHENTICATED = 3  # not logged in, session expired, or this folder is not linked
    NOT_FOUND = 4  # the API's 404, or nothing to act on (no deployment, unknown name)
    FORBIDDEN = 5  # the API's 403: your role does not allow it
    CONFLICT = 6  # the API's 409: a name is taken, the last environment …
    INTERRUPTED = 130  # Ctrl-C
    BROKEN_PIPE = 141  # stdout's reader went away (`caboose logs | head`), as for SIGPIPE


class CliError(Exception):
    """A failure to report as one line (plus an optional hint) and an exit code."""

    def __init__(
        self, message: str, *, exit_code: ExitCode = ExitCode.FAILURE, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint


class UsageError(CliError):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, exit_code=ExitCode.USAGE, hint=hint)


class NotLoggedInError(CliError):
    def __init__(self, message: str = "Not logged in", *, hint: str | None = None) -> None:
        super().__init__(
            message,
            exit_code=ExitCode.NOT_AUTHENTICATED,
            hint=hint or "Run `caboose login` (or set CABOOSE_TOKEN).",
        )


class NotLinkedError(CliError):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(
            message,
            exit_code=ExitCode.NOT_AUTHENTICATED,
            hint=hint or "Run `caboose link` to pick a project, or `caboose init` to create one.",
        )


class NotFoundError(CliError):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, exit_code=ExitCode.NOT_FOUND, hint=hint)


_EXIT_CODE_BY_STATUS = {
    400: ExitCode.USAGE,
    401: ExitCode.NOT_AUTHENTICATED,
    403: ExitCode.FORBIDDEN,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.CONFLICT,
    413: ExitCode.USAGE,
    422: ExitCode.USAGE,
}


class ApiError(CliError):
    """An RFC 7807 problem the API answered with, shown as ``title: detail``."""

    def __init__(
        self,
        *,
        status: int,
        title: str,
        detail: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.problem = problem or {}
        message = title if not detail or detail == title else f"{title}: {detail}"
        described = [
            f"{error.get('field', '?')}: {error.get('message', '')}"
            for error in self.problem.get("errors") or []
            if isinstance(error, dict)
        ]
        # The platform's detail often already spells out a lone field error: not twice.
        field_errors = [f"  {line}" for line in described if line not in (detail or "")]
        if field_errors:
            message = "\n".join([message, *field_errors])
        super().__init__(message, exit_code=_EXIT_CODE_BY_STATUS.get(status, ExitCode.FAILURE))

    @property
    def request_id(self) -> str | None:
        value = self.problem.get("request_id")
        return value if isinstance(value, str) else None
