"""Errors of the content package, all :class:`sendwise.errors.InputError` subclasses.

InputError
└── TemplateError      a template that cannot be loaded, compiled or rendered
    └── UnsafeTemplateError   a template that tried to leave the sandbox or exceed a budget
"""

from __future__ import annotations

from sendwise.errors import InputError


class TemplateError(InputError):
    """A template cannot be used; ``file`` and ``line`` say where, when known."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, code: str = "error"
    ) -> None:
        self.message, self.file, self.line, self.code = message, file, line, code
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(f"{where}{message}")


class UnsafeTemplateError(TemplateError):
    """A template tried to reach Python internals, files, or to loop or allocate without end."""
