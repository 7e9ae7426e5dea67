"""What every task shares: opening the project, and the one place where failures become one line and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Exit

if TYPE_CHECKING:
    from edge.config import ModelConfig
    from edge.project import Project

TARGET_HELP = "twin (offline, default from edge.yaml) or gcp"
MODEL_HELP = "model name from edge.yaml (default: the only one)"
WAIT_HELP = "seconds to wait for another command's lock (default 0: fail at once)"
JSON_HELP = "print the result as one JSON document (for scripts)"


@contextmanager
def user_errors(project: Project | None = None) -> Iterator[None]:
    """Known failures exit non-zero with one line (`edge: ...`); Ctrl-C exits 130 once the lock was released;
    a twin that died under the command is named as such (see Target.watch)."""
    from edge.errors import EdgeError
    from edge.ui import setup_logging

    setup_logging()
    try:
        yield
    except EdgeError as exc:
        raise Exit(f"edge: {exc}", code=exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit(f"edge: {_interrupted(project)}", code=130 if not _lost(project) else 1) from None
    except Exception as exc:
        message = _known_failure(exc)
        if message is None:
            raise
        raise Exit(f"edge: {message}", code=1) from None


def _lost(project: Project | None) -> str | None:
    return project.target.lost() if project is not None else None


def _interrupted(project: Project | None) -> str:
    lost = _lost(project)
    held = project is not None and "state" in vars(project) and project.state.held is not None
    if lost:
        unlock = ", clear this command's lock with `invoke force-unlock`" if held else ""
        return f"{lost}: start it again with `invoke twin.up`{unlock}, then run the command again"
    if held:
        return "interrupted; the lock could not be released: once no command runs, `invoke force-unlock`"
    return "interrupted; the lock was released"


def _known_failure(exc: Exception) -> str | None:
    """The one line for a failure of the clients (API errors, a target that does not answer), else None."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError

    if isinstance(exc, GoogleAPICallError):
        return f"Google Cloud API error: {exc.message}"
    if isinstance(exc, RetryError) or isinstance(exc, OSError) and "Connection refused" in str(exc):
        return "the target stopped answering (is the twin running? `invoke twin.status`)"
    return None


def open_project(target: str | None) -> Project:
    from edge.project import open_project as _open

    return _open(Path("."), target)


@contextmanager
def session(target: str | None) -> Iterator[Project]:
    """The project on its target, watched (a twin that dies ends the command at once), with one-line errors."""
    project = None
    with user_errors():
        project = open_project(target)
    with user_errors(project), project.target.watch():
        yield project


@contextmanager
def locked_model(
    target: str | None, model: str | None, verb: str, wait: float
) -> Iterator[tuple[Project, ModelConfig]]:
    """(project, model config) with the project's lock held as `<verb> <model>`."""
    with session(target) as project:
        spec = project.config.model(model)
        with project.state.lock(f"{verb} {spec.name}", float(wait)):
            yield project, spec
