"""Errors a bundle raises, and the coded errors the loader reports (codes as in docs/errors.md)."""


class InvalidInput(ValueError):
    """Raise from predict() when the caller's input is wrong: the client gets 400 MS_ERR_INPUT_INVALID."""


class BundleError(Exception):
    """A failure with a stable modelship code (MS_ERR_*). ``params`` fill the runtime's message template
    for the code (``detail`` always; e.g. ``entrypoint`` for MS_ERR_PLUGIN_LOAD)."""

    def __init__(self, code, detail, **params):
        super().__init__("%s: %s" % (code, detail))
        self.code = code
        self.detail = detail
        self.params = dict(params, detail=detail)
