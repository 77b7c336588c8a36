"""The one error tree: the drawing in errors.py is true, and the library raises its own errors.

Every SendwiseError subclass anywhere in src/ must appear in errors.py's drawing under its real
parent, and every class in the drawing must exist. Raising a built-in exception on purpose is
allowed only where Python's protocols ask for it (listed below with the reason).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import pkgutil
import re
from collections import Counter
from pathlib import Path

import sendwise
import sendwise.errors
from sendwise.errors import SendwiseError

SRC = Path(sendwise.__file__).parent


def _import_everything() -> None:
    for info in pkgutil.walk_packages(sendwise.__path__, "sendwise."):
        if info.name.endswith("__main__") or ".migrations" in info.name:
            continue
        importlib.import_module(info.name)


def _drawn_tree() -> dict[str, str | None]:
    """{class name: parent name} from the drawing in errors.py's docstring."""
    doc = sendwise.errors.__doc__ or ""
    lines = doc.splitlines()
    root = next(i for i, text in enumerate(lines) if text.strip() == "SendwiseError")
    base = lines[root].index("SendwiseError")
    parents: dict[str, str | None] = {"SendwiseError": None}
    stack = ["SendwiseError"]
    for text in lines[root + 1 :]:
        if not text.strip():
            break
        found = re.search(r"[├└]── (\w+)", text)
        if found is None:
            continue  # a continuation line of a description
        depth = (found.start(1) - base) // 4
        del stack[depth:]
        parents[found.group(1)] = stack[-1]
        stack.append(found.group(1))
    return parents


def _real_tree() -> dict[str, str | None]:
    _import_everything()
    parents: dict[str, str | None] = {"SendwiseError": None}
    todo = [SendwiseError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if not sub.__module__.startswith("sendwise."):
                continue
            assert sub.__name__ not in parents, f"two error classes named {sub.__name__}"
            parents[sub.__name__] = cls.__name__
            todo.append(sub)
    return parents


def test_the_drawn_error_tree_is_the_real_one() -> None:
    drawn, real = _drawn_tree(), _real_tree()
    assert len(drawn) > 10, "the drawing was not found in errors.py's docstring"
    missing = sorted(set(real) - set(drawn))
    assert not missing, f"error classes missing from errors.py's drawing: {missing}"
    invented = sorted(set(drawn) - set(real))
    assert not invented, f"errors.py draws classes that do not exist: {invented}"
    wrong = {name: (drawn[name], real[name]) for name in real if drawn[name] != real[name]}
    assert not wrong, f"drawn under the wrong parent (drawn, real): {wrong}"


def test_the_drawing_parser_sees_nesting() -> None:
    drawn = _drawn_tree()
    assert drawn["SignatureError"] == "TrackingError"
    assert drawn["TrackingError"] == "InputError"
    assert drawn["DataQualityError"] == "SendwiseError"


BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}

# Built-in exceptions raised on purpose where Python's own protocols want them, by module.
# Anything else the library raises on purpose must be a SendwiseError.
ALLOWED_BUILTIN_RAISES = Counter(
    {
        # pydantic validators must raise ValueError; loaders turn it into ConfigError etc.
        ("config.py", "ValueError"): 8,  # pydantic validators raise ValueError
        ("campaigns/definition.py", "ValueError"): 13,  # pydantic validators (allocation too)
        # a mapping-like lookup (KeyError is the protocol of `x[key]`-style lookups)
        ("warehouse/schema.py", "KeyError"): 1,
        ("campaigns/results.py", "KeyError"): 1,
        # json.dumps(default=...) must raise TypeError for what it cannot write
        ("simulate/shop.py", "TypeError"): 1,
        # a module's __getattr__ must raise AttributeError for names it does not have
        ("segments/__init__.py", "AttributeError"): 1,
        # an abstract method
        ("recommend/base.py", "NotImplementedError"): 1,
        # programming errors: a caller passed what the API never accepts (not user input)
        ("warehouse/validation.py", "ValueError"): 1,
        ("recommend/select.py", "ValueError"): 1,
        ("recommend/ranker.py", "RuntimeError"): 1,
        ("store/sql_records.py", "ValueError"): 2,
        ("store/claims.py", "ValueError"): 2,
        ("store/memory.py", "ValueError"): 1,
        ("recommend/engine.py", "ValueError"): 1,
        ("recommend/cooccur.py", "ValueError"): 1,
        ("store/records.py", "ValueError"): 2,
        ("store/webhooks.py", "ValueError"): 2,
        ("cli/registry.py", "TypeError"): 1,
        # raised and caught inside the SMTP messenger: a connection failure is transient
        ("delivery/smtp.py", "ConnectionError"): 1,
    }
)


def _builtin_raises() -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in BUILTIN_ERRORS:
                found[(path.relative_to(SRC).as_posix(), exc.id)] += 1
    return found


def test_the_library_raises_its_own_errors() -> None:
    found = _builtin_raises()
    extra = {k: n for k, n in found.items() if n > ALLOWED_BUILTIN_RAISES.get(k, 0)}
    assert not extra, (
        f"built-in exceptions raised on purpose (raise a SendwiseError subclass instead): {extra}"
    )
