"""Exception types. Every error xrdata raises on bad input is an :class:`XRDataError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xrdata.validation import Violation


class XRDataError(Exception):
    """Base class of every error xrdata raises about data, files, stores or arguments."""


class ValidationError(XRDataError, ValueError):
    """A stream, recording, id or argument does not satisfy the data model."""


class InvalidIdError(ValidationError):
    """A user, session or stream id is not ``[A-Za-z0-9_-]{1,64}`` (ids become paths)."""


class SchemaError(ValidationError):
    """A stream violates its modality schema; ``.violations`` lists every problem found."""

    def __init__(self, message: str, violations: Sequence[Violation] = ()) -> None:
        super().__init__(message)
        self.violations = list(violations)


class StoreError(XRDataError):
    """The store cannot do what was asked (missing session, wrong mode, foreign format...)."""


class SessionExistsError(StoreError):
    """A session with this id is already committed for this user."""


class NotFoundError(StoreError, KeyError):
    """A user, session or stream does not exist in the store."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class LockedError(StoreError):
    """Another writer holds the user partition's lock."""


class LoaderError(XRDataError):
    """A recording file cannot be read; the message names the file and the problem."""


class MissingDependencyError(XRDataError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


def require(module: str, extra: str) -> object:
    """Import an optional heavy dependency, or raise naming the ``pip install xrdata[extra]`` to run."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is required for this feature: pip install 'xrdata[{extra}]'"
        ) from exc
