"""The subset of Vertex's list filter language the twin understands: `field="value"` terms joined by AND."""

import re

from edge.twin.errors import InvalidArgument

_TERM = re.compile(r'\s*([A-Za-z_][\w.]*)\s*(=|!=)\s*"([^"]*)"\s*')


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _field(resource: dict, path: str):
    value = resource
    for i, part in enumerate(path.split(".")):
        if not isinstance(value, dict):
            return None
        # label keys are data, not field names: keep them as written
        value = value.get(part if i > 0 and path.startswith("labels.") else _camel(part))
    return value


def parse(text: str | None) -> list[tuple[str, str, str]]:
    if not text:
        return []
    terms = []
    for raw in re.split(r"\s+AND\s+", text.strip()):
        match = _TERM.fullmatch(raw)
        if match is None:
            raise InvalidArgument(
                f'Unsupported filter term {raw!r}: the twin understands field="value" terms joined by AND'
            )
        terms.append(match.groups())
    return terms


def matches(resource: dict, terms: list[tuple[str, str, str]]) -> bool:
    for path, op, expected in terms:
        actual = _field(resource, path)
        if (str(actual) == expected) != (op == "="):
            return False
    return True
