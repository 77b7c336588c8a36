"""Errors of the segments package, all :class:`sendwise.errors.InputError` subclasses.

A rule, a list of segments or a table given to cluster is the user's input: when it cannot be
used the CLI shows the message and the HTTP service answers 4xx. The fields are structured so
that an editor can underline the offending part of a rule (``position``) and offer the fix
(``suggestion``) without parsing the message.

    InputError
    ├── RuleError       a segment rule that cannot be compiled
    └── SegmentError    a list of segments or a table that cannot be segmented / clustered
"""

from __future__ import annotations

from typing import Literal

from sendwise.errors import InputError

RuleErrorKind = Literal["syntax", "unknown_field", "type", "forbidden"]


class RuleError(InputError):
    """A segment rule cannot be compiled.

    ``kind`` says why: ``syntax`` (not a well-formed expression), ``unknown_field`` (a name the
    table lacks; ``suggestion`` holds the closest field, if any), ``type`` (e.g. a number compared
    with text, ``and`` of two numbers) or ``forbidden`` (valid Python that is not part of the rule
    language: calls, attributes, subscripts, lambdas, comprehensions, ``**``...).
    ``position`` is the 1-based column in ``rule`` where the problem starts, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        kind: RuleErrorKind,
        field: str | None = None,
        position: int | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.message = message
        self.rule = rule
        self.kind = kind
        self.field = field
        self.position = position
        self.suggestion = suggestion
        where = f" (column {position})" if position is not None else ""
        shown = rule if len(rule) <= 120 else rule[:117] + "..."
        super().__init__(f"{message}{where} in rule {shown!r}")


class SegmentError(InputError):
    """Segments or a features table that cannot be used as given (``name`` is the culprit)."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        self.message = message
        self.name = name
        super().__init__(message)
