"""Reading the logs the twin's processes write: the last lines, or the bytes from an offset."""

from __future__ import annotations

from pathlib import Path

CHUNK_BYTES = 1 << 20


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a text log; "" if it does not exist."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def read_from(path: Path, offset: int, limit: int = CHUNK_BYTES) -> bytes:
    """At most `limit` bytes of a log from byte `offset`; b"" past its end or if it does not exist."""
    try:
        with Path(path).open("rb") as log:
            log.seek(max(offset, 0))
            return log.read(limit)
    except OSError:
        return b""
