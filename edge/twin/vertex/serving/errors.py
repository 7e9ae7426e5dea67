"""The one informative line of an exception (TensorFlow's start with boilerplate)."""

from __future__ import annotations

_TF_BOILERPLATE = ("Graph execution error", "Detected at node", "<stack traces", "File ")


def first_line(exc: BaseException) -> str:
    """The informative line of an error; TensorFlow's start with boilerplate."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    lines = [line.strip() for line in message.splitlines()]
    useful = [line for line in lines if line and not line.startswith(_TF_BOILERPLATE)]
    return (useful or lines or [type(exc).__name__])[0][:1000]
