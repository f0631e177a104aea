"""The one error tree of swarmlite.

Every layer raises these, translated at the boundary from whatever foreign library it talks
to (with ``raise ... from exc``). Over the wire an error travels as ``{code, message, hint,
details}`` and the receiving side raises the same class again from ``code`` (see
``from_code``), so nothing ever matches on message text.

    SwarmliteError (code, message, hint, details)
      UsageError
      InvalidArgument
        ComposeError (path, line, column)
          ComposeErrors        several at once, in ``problems``
      NotFound
      AlreadyExists
      Conflict                 stale version: re-read and retry
      FailedPrecondition
      PermissionDenied
      Unavailable*
        NoLeader*
        NotLeader*             details["leader"] holds the leader's address when known
      RuntimeFailure
        ImageNotFound
        ContainerFailed
        RuntimeUnavailable*
      NetworkSetupFailure
      InternalError            a bug
    * retryable

Imports nothing of ours.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SwarmliteError(Exception):
    code: ClassVar[str] = "unknown"
    retryable: ClassVar[bool] = False

    def __init__(
        self, message: str, *, hint: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class UsageError(SwarmliteError):
    code = "usage"


class InvalidArgument(SwarmliteError):
    code = "invalid_argument"


class ComposeError(InvalidArgument):
    code = "compose"

    def __init__(
        self,
        message: str,
        *,
        path: str,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = path + (f":{line}" if line else "") + (f":{column}" if line and column else "")
        super().__init__(
            f"{where}: {message}",
            hint=hint,
            details={"path": path, "line": line, "column": column},
        )
        self.path, self.line, self.column = path, line, column


class ComposeErrors(ComposeError):
    """Several problems found in compose files at once (``problems``, in file order).

    Its message lists every one on its own line (with its hint) under a count; ``path``,
    ``line`` and ``column`` are the first problem's, and ``details["problems"]`` holds each
    as ``{message, hint, path, line, column}``.
    """

    SHOWN: ClassVar[int] = 100  # problems listed in the message; the rest are counted

    def __init__(self, problems: list[ComposeError]) -> None:
        first = problems[0]
        files = ", ".join(dict.fromkeys(p.path for p in problems))
        lines = [f"{len(problems)} problems in {files}:"]
        for problem in problems[: self.SHOWN]:
            lines.append(f"  {problem.message}")
            if problem.hint:
                lines.append(f"    hint: {problem.hint}")
        if len(problems) > self.SHOWN:
            lines.append(f"  ... and {len(problems) - self.SHOWN} more")
        InvalidArgument.__init__(
            self,
            "\n".join(lines),
            details={
                "path": first.path,
                "line": first.line,
                "column": first.column,
                "problems": [{**p.details, "message": p.message, "hint": p.hint} for p in problems],
            },
        )
        self.path, self.line, self.column = first.path, first.line, first.column
        self.problems = list(problems)


class NotFound(SwarmliteError):
    code = "not_found"


class AlreadyExists(SwarmliteError):
    code = "already_exists"


class Conflict(SwarmliteError):
    code = "conflict"


class FailedPrecondition(SwarmliteError):
    code = "failed_precondition"


class PermissionDenied(SwarmliteError):
    code = "permission_denied"


class Unavailable(SwarmliteError):
    code = "unavailable"
    retryable = True


class NoLeader(Unavailable):
    code = "no_leader"


class NotLeader(Unavailable):
    code = "not_leader"

    @property
    def leader(self) -> str | None:
        value = self.details.get("leader")
        return value if isinstance(value, str) else None


class RuntimeFailure(SwarmliteError):
    code = "runtime_failure"


class ImageNotFound(RuntimeFailure):
    code = "image_not_found"


class ContainerFailed(RuntimeFailure):
    code = "container_failed"


class RuntimeUnavailable(RuntimeFailure):
    code = "runtime_unavailable"
    retryable = True


class NetworkSetupFailure(SwarmliteError):
    code = "network_setup_failure"


class InternalError(SwarmliteError):
    code = "internal"


def _all_classes() -> dict[str, type[SwarmliteError]]:
    found: dict[str, type[SwarmliteError]] = {}
    pending: list[type[SwarmliteError]] = [SwarmliteError]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls
        pending.extend(cls.__subclasses__())
    return found


_BY_CODE = _all_classes()


def from_code(
    code: str, message: str, hint: str | None = None, details: dict[str, Any] | None = None
) -> SwarmliteError:
    """Rebuild the error a peer sent; an unknown code becomes an InternalError."""
    cls = _BY_CODE.get(code)
    if cls is None or issubclass(cls, ComposeError):
        # ComposeError's message already carries its location; rebuild it as its parent.
        cls = InternalError if cls is None else InvalidArgument
    return cls(message, hint=hint, details=details)
