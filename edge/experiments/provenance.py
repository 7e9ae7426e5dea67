"""Who ran an experiment and what their working tree held beyond the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

MAX_DIFF_CHARS = 20_000  # a run's info stays small: Omniboard, the table and the report read it
MAX_FILES = 200


def who() -> str:
    """user@host of this process."""
    from edge.state import whoami

    return whoami()


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, errors="replace")


def git_changes(root: Path, first: list[str]) -> dict:
    """The tracked files under `root` that differ from HEAD (staged or not; paths relative to `root`), those in
    `first` (the params file) ahead of the others, and their diff in that order, cut at MAX_DIFF_CHARS:
    {"git_changed_files": [...], "git_diff": "...", "git_diff_truncated": bool}. Empty before the first commit."""
    changed = _git(root, "diff", "--name-only", "--relative", "HEAD")
    if changed.returncode != 0:
        return {"git_changed_files": [], "git_diff": "", "git_diff_truncated": False}
    files = changed.stdout.splitlines()
    leading = [name for name in first if name in files]
    files = leading + [name for name in files if name not in leading]
    options = ("diff", "--relative", "--no-color", "--no-ext-diff", "--no-textconv", "HEAD", "--")
    diff = _git(root, *options, *leading).stdout if leading else ""
    if len(diff) < MAX_DIFF_CHARS and len(files) > len(leading):
        diff += _git(root, *options, ".", *(f":(exclude){name}" for name in leading)).stdout
    truncated = len(diff) > MAX_DIFF_CHARS
    if truncated:
        diff = diff[:MAX_DIFF_CHARS] + f"\n... (diff cut at {MAX_DIFF_CHARS} characters)\n"
    return {"git_changed_files": files[:MAX_FILES], "git_diff": diff, "git_diff_truncated": truncated}
