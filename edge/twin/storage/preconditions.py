"""GCS request preconditions: read them from a JSON API query, test them against an object.

An object is the emulator's resource dict (``generation`` and ``metageneration`` as
strings) or None when no live object exists; a missing object has generation 0.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from gcp_storage_emulator.exceptions import BadRequest

MESSAGE = "At least one of the pre-conditions you specified did not hold."


class PreconditionFailed(Exception):
    """A precondition did not hold: HTTP 412, reason ``conditionNotMet``."""


class NotModified(Exception):
    """A ``...NotMatch`` precondition of a read did not hold: HTTP 304, no body."""


@dataclass(frozen=True)
class Preconditions:
    """The four generation preconditions of one request (None = not given)."""

    generation_match: int | None = None
    generation_not_match: int | None = None
    metageneration_match: int | None = None
    metageneration_not_match: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]], source: bool = False) -> "Preconditions":
        """Parse ``ifGenerationMatch``... (or ``ifSourceGenerationMatch``... if source).

        Raises BadRequest for a value that is not an integer.
        """
        prefix = "ifSource" if source else "if"
        values = {}
        for field in fields(cls):
            name = prefix + "".join(part.title() for part in field.name.split("_"))
            raw = query.get(name)
            if not raw:
                continue
            try:
                values[field.name] = int(raw[0])
            except ValueError:
                raise BadRequest(f"Invalid value for {name}: {raw[0]!r}") from None
        return cls(**values)

    def __bool__(self) -> bool:
        return any(getattr(self, field.name) is not None for field in fields(self))

    def check(self, obj: dict | None, read: bool = False) -> None:
        """Raise PreconditionFailed unless every given precondition holds for obj.

        For a read (``read=True``) a failed ``...NotMatch`` raises NotModified instead,
        as GCS answers 304 to a conditional GET.
        """
        generation = int(obj["generation"]) if obj else 0
        metageneration = int(obj["metageneration"]) if obj else None
        if self.generation_match is not None and generation != self.generation_match:
            raise PreconditionFailed(f"ifGenerationMatch={self.generation_match}, generation is {generation}")
        if self.metageneration_match is not None and (metageneration != self.metageneration_match):
            raise PreconditionFailed(
                f"ifMetagenerationMatch={self.metageneration_match}, metageneration is {metageneration}"
            )
        not_modified = NotModified if read else PreconditionFailed
        if self.generation_not_match is not None and (obj is None or generation == self.generation_not_match):
            raise not_modified(f"ifGenerationNotMatch={self.generation_not_match}, generation is {generation}")
        if self.metageneration_not_match is not None and (
            obj is None or metageneration == self.metageneration_not_match
        ):
            raise not_modified(
                f"ifMetagenerationNotMatch={self.metageneration_not_match}, metageneration is {metageneration}"
            )
