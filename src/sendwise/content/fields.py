"""Which profile columns a compiled template reads, so that sending reads only those.

The profile has some 90 columns and a template typically shows two or three of them; reading
and converting the others is most of the cost of a customer's tokens. The answer is
conservative: whenever a template could reach a column that is not named in it (``profile``
used whole, passed on, renamed, indexed by a computed key, or a template it includes), it is
None, meaning every column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import Environment, nodes

ROOT = "profile"
_OTHER_TEMPLATES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def profile_fields(env: Environment, sources: Iterable[str]) -> frozenset[str] | None:
    """The names read as ``profile.name`` or ``profile["name"]`` in these template sources,
    or None when the templates may read other columns too."""
    used: set[str] = set()
    for source in sources:
        tree = env.parse(source)
        if any(True for _ in tree.find_all(_OTHER_TEMPLATES)):
            return None
        named: set[int] = set()
        node: Any
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            if not (isinstance(node.node, nodes.Name) and node.node.name == ROOT):
                continue
            if isinstance(node, nodes.Getattr):
                used.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                used.add(node.arg.value)
            else:
                return None
            named.add(id(node.node))
        if any(n.name == ROOT and id(n) not in named for n in tree.find_all(nodes.Name)):
            return None
    return frozenset(used)
