"""References and templates: the only way graph fields point at values.

A reference is a name followed by an optional path: ``facts``, ``facts.items[0]``,
``row["first name"]``. A template is text with references in braces; ``{{`` and ``}}``
are literal braces. Nothing else is interpreted: no format specs, no code.

>>> parse_template("Compare {a} with {b.title}").refs
(Ref(name='a', path=()), Ref(name='b', path=('title',)))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD = re.compile(r"\.([A-Za-z0-9_\-]+)")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r'\[("(?:[^"\\]|\\.)*")\]')

PathSegment = str | int


class RefSyntaxError(ValueError):
    """A reference or template is not well formed."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A name plus a path into its value (dict keys are ``str``, list indexes ``int``)."""

    name: str
    path: tuple[PathSegment, ...] = ()

    def __str__(self) -> str:
        return self.name + format_path(self.path)


def format_path(path: tuple[PathSegment, ...]) -> str:
    """Write a path back in reference syntax: ``("a", 0)`` -> ``.a[0]``."""
    parts = []
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif re.fullmatch(r"[A-Za-z0-9_\-]+", segment):
            parts.append(f".{segment}")
        else:
            parts.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
    return "".join(parts)


def parse_path(text: str) -> tuple[PathSegment, ...]:
    """Parse a path such as ``a.b[0]`` or ``.a["x y"]`` (leading dot optional)."""
    if text and not text.startswith((".", "[")):
        text = "." + text
    segments: list[PathSegment] = []
    pos = 0
    while pos < len(text):
        segment, pos = _next_segment(text, pos)
        segments.append(segment)
    return tuple(segments)


def _next_segment(text: str, pos: int) -> tuple[PathSegment, int]:
    if match := _FIELD.match(text, pos):
        return match.group(1), match.end()
    if match := _INDEX.match(text, pos):
        return int(match.group(1)), match.end()
    if match := _QUOTED.match(text, pos):
        return str(json.loads(match.group(1))), match.end()
    raise RefSyntaxError(f'bad path at {text[pos:]!r}: use .field, [0] or ["key"]')


def parse_ref(text: str) -> Ref:
    """Parse ``name.path[0]`` into a :class:`Ref`."""
    match = IDENTIFIER.match(text)
    if not match:
        raise RefSyntaxError(f"reference {text!r} must start with a name (letters, digits, _)")
    if match.end() == len(text):
        return Ref(text)  # the common case: a bare name
    return Ref(match.group(0), parse_path(text[match.end() :]))


@dataclass(frozen=True, slots=True)
class Template:
    """Parsed template: literal text pieces interleaved with references.

    ``pieces`` alternates literal ``str`` and :class:`Ref`; ``refs`` lists the references.
    """

    pieces: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(piece for piece in self.pieces if isinstance(piece, Ref))

    @property
    def single_ref(self) -> Ref | None:
        """The reference when the template is exactly ``{ref}``, else ``None``."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], Ref):
            return self.pieces[0]
        return None


def parse_template(text: str) -> Template:
    """Split template text into literals and references, checking brace syntax."""
    pieces: list[str | Ref] = []
    literal: list[str] = []
    pos = 0
    while (brace := _BRACE.search(text, pos)) is not None:
        at = brace.start()
        literal.append(text[pos:at])
        if text.startswith("{{", at) or text.startswith("}}", at):
            literal.append(text[at])
            pos = at + 2
        elif text[at] == "{":
            end = text.find("}", at)
            if end < 0:
                raise RefSyntaxError(f"unclosed '{{' at position {at}; write '{{{{' for a brace")
            _flush_literal(pieces, literal)
            pieces.append(_parse_braced(text[at + 1 : end], at))
            pos = end + 1
        else:
            raise RefSyntaxError(f"single '}}' at position {at}; write '}}}}' for a brace")
    literal.append(text[pos:])
    _flush_literal(pieces, literal)
    return Template(tuple(pieces))


_BRACE = re.compile(r"[{}]")


def _flush_literal(pieces: list[str | Ref], literal: list[str]) -> None:
    text = "".join(literal)
    if text:
        pieces.append(text)
    literal.clear()


def _parse_braced(inner: str, pos: int) -> Ref:
    try:
        return parse_ref(inner.strip())
    except RefSyntaxError as exc:
        raise RefSyntaxError(
            f"at position {pos}: {exc}; write '{{{{' for a literal brace"
        ) from None


def escape_literal(text: str) -> str:
    """Escape text so that a template renders it verbatim."""
    return text.replace("{", "{{").replace("}", "}}")


def to_text(value: Any) -> str:
    """How a value appears inside rendered text: strings as-is, everything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def shown(value: Any, limit: int = 200) -> str:
    """A value as JSON text for an error message, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[:limit] + "..."


def resolve_path(value: Any, path: tuple[PathSegment, ...]) -> Any:
    """Follow ``path`` into ``value``; raise ``LookupError`` naming the failing segment."""
    for depth, segment in enumerate(path):
        value = _step(value, segment, path[:depth])
    return value


def _step(value: Any, segment: PathSegment, walked: tuple[PathSegment, ...]) -> Any:
    where = format_path(walked) or "the value"
    if isinstance(segment, int):
        if not isinstance(value, list):
            raise LookupError(
                f"{where} is {type(value).__name__}, not a list; cannot take [{segment}]"
            )
        if not -len(value) <= segment < len(value):
            raise LookupError(f"index [{segment}] out of range for {where} (length {len(value)})")
        return value[segment]
    if not isinstance(value, dict):
        raise LookupError(
            f"{where} is {type(value).__name__}, not an object; cannot take .{segment}"
        )
    if segment not in value:
        keys = ", ".join(sorted(map(str, value))[:10])
        raise LookupError(f"key {segment!r} not found in {where} (keys: {keys})")
    return value[segment]
