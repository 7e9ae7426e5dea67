"""What every lifecycle task shares: opening the project and turning user errors into one line."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from invoke import Exit

TARGET_HELP = "twin (offline, default from edge.yaml) or gcp"
MODEL_HELP = "model name from edge.yaml (default: the only one)"
WAIT_HELP = "seconds to wait for another command's lock (default 0: fail at once)"


@contextmanager
def user_errors():
    """Known failures exit non-zero with one line; Ctrl-C exits 130 after the lock was released."""
    from edge.config import ConfigError
    from edge.data import DataError
    from edge.deploy import DeployError
    from edge.infra import InfraError
    from edge.state import StateError
    from edge.training import TrainingError
    from edge.twin.process import TwinProcessError

    try:
        yield
    except (ConfigError, DataError, DeployError, InfraError, StateError, TrainingError, TwinProcessError) as exc:
        raise Exit(f"edge: {exc}", code=1) from None
    except KeyboardInterrupt:
        raise Exit("edge: interrupted; the lock was released", code=130) from None
    except Exception as exc:
        from google.api_core.exceptions import GoogleAPICallError

        if isinstance(exc, GoogleAPICallError):
            raise Exit(f"edge: Google Cloud API error: {exc.message}", code=1) from None
        if isinstance(exc, OSError) and "Connection refused" in str(exc):
            raise Exit(
                "edge: the target stopped answering (is the twin running? `invoke twin.status`)", code=1
            ) from None
        raise


def confirm(question: str) -> bool:
    """Asks on the terminal; no terminal (CI without --yes) means no."""
    try:
        return input(f"{question} [y/N] ").strip().lower() == "y"
    except EOFError:
        return False


def open_project(target: str | None):
    from edge.project import open_project as _open

    return _open(Path("."), target)


@contextmanager
def locked_model(target: str | None, model: str | None, verb: str, wait: float):
    """(project, model config) with the project's lock held as `<verb> <model>`."""
    project = open_project(target)
    spec = project.config.model(model)
    with project.state.lock(f"{verb} {spec.name}", float(wait)):
        yield project, spec
