"""Every error the package raises: what a bundle raises for bad input, the coded errors of loading and serving
(codes as in docs/errors.md), and a failed CLI call of ``Client``."""

from __future__ import annotations


class InvalidInput(ValueError):
    """Raise from predict() when the caller's input is wrong: the client gets 400 MS_ERR_INPUT_INVALID."""


class BundleError(Exception):
    """A failure with a stable modelship code (MS_ERR_*). ``params`` fill the runtime's message template
    for the code (``detail`` always; e.g. ``entrypoint`` for MS_ERR_PLUGIN_LOAD)."""

    def __init__(self, code: str, detail: str, **params: object) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.params: dict[str, object] = dict(params, detail=detail)


class ModelshipError(Exception):
    """A failed CLI call: ``code`` is modelship's error code when the CLI named one (else None)."""

    def __init__(self, message: str, code: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = exit_code


def describe(err: BaseException) -> str:
    """``Type: message`` of an exception, one line (its message's first line)."""
    text = str(err).strip()
    msg = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {msg}" if msg else type(err).__name__
