"""A hypothesis strategy of hostile templates: expressions and statements composed from every
operation that can build a large string or list, nested, looped, and put in macros."""

from __future__ import annotations

from hypothesis import strategies as st

NUMBERS = st.sampled_from(["0", "3", "80", "10000", "100000", "10**6", "1000000000", "-5"])
ATOMS = st.sampled_from(
    [
        "'ab'",
        '"x y "',
        "'%s'",
        "'{}'",
        "ns.s",
        "ns.l",
        "[1, 'a']",
        "range(1000)",
        "customer.first_name or 'Ann'",
        "recommendations",
        "shop",
        "(1, 'b')",
        "{'k': 'v'}",
    ]
)
UNARY = [
    "{e} ~ {e}",
    "{e} + {e}",
    "{e} * {n}",
    "[{e}] * {n}",
    "({e}, {e})",
    "{e}|center({n})",
    "{e}|indent({n}, true, true)",
    "{e}|replace('', {e})",
    "{e}|replace('a', {e})",
    "'%{n}s' % {e}",
    "'%s%s%s' % ({e}, {e}, {e})",
    "'%(a)s%(a)s' % {{'a': {e}}}",
    "'%.{n}f' % 1.5",
    "{e}|format({e}, {e})",
    "'{{:{n}}}'.format({e})",
    "'{{0}}{{0}}{{0}}'.format({e})",
    "'{{a}}{{a}}'.format_map({{'a': {e}}})",
    "{e}|wordwrap({n}, wrapstring={e})",
    "{e}|truncate({n}, end={e})",
    "{e}|join({e})",
    "{e}|list",
    "{e}|string",
    "{e}|tojson",
    "{e}|tojson(indent=4)",
    "{e}|pprint",
    "{e}|batch({n}, {e})|list",
    "{e}|slice({n}, {e})|list",
    "[{e}, {e}]|sum(start=[])",
    "{e}|urlize(target={e})",
    "{e}|e|e",
    "{e}|upper|title|trim",
    "{e}|unique|list",
    "{e}|reverse",
    "{e}|dictsort",
    "{e}|xmlattr",
    "{e}|map('upper')|join",
    "({e})|center(10)",
    "({e}).center({n})",
    "({e}).ljust({n})",
    "({e}).zfill({n})",
    "({e}).replace('', {e})",
    "({e}).join([{e}, {e}, {e}])",
    "({e}).split()",
    "({e}).expandtabs({n})",
    "dict(a={e}, b={e})",
    "namespace(a={e})",
    "{n} ** {n}",
    "{n} * {n} * {n}",
    "({e})|length",
]


def _apply(template: str, e: str, n: str) -> str:
    return template.format(e=e, n=n)


def expressions(depth: int = 3) -> st.SearchStrategy[str]:
    """Expressions nesting up to ``depth`` operations."""
    if depth == 0:
        return ATOMS
    inner = expressions(depth - 1)
    op = st.builds(_apply, st.sampled_from(UNARY), inner, NUMBERS)
    return st.one_of(inner, op, op)


STATEMENTS = [
    # an accumulator grown by an operation in a loop (the `~` doubling of the issue)
    "{{% for i in range({k}) %}}"
    "{{% set ns.s = {grow} %}}{{% set ns.l = ns.l + ns.l %}}{{% endfor %}}"
    "{{{{ ns.s }}}}{{{{ ns.l }}}}",
    "{{% for i in range({k}) %}}{{{{ {e} }}}}{{% endfor %}}",
    "{{% set b %}}{{% for i in range({k}) %}}{{{{ {e} }}}}{{% endfor %}}{{% endset %}}"
    "{{{{ b ~ b }}}}",
    "{{% macro m(x) %}}{{{{ {e} }}}}{{{{ m(x) }}}}{{% endmacro %}}{{{{ m('a') }}}}",
    "{{% macro m(x) %}}{{% for i in range({k}) %}}{{{{ x }}}}{{% endfor %}}{{% endmacro %}}"
    "{{{{ m(m({e})) }}}}",
    "{{% filter center({n}) %}}{{{{ {e} }}}}{{% endfilter %}}",
    "{{% filter replace('', 'xyz') %}}{{% for i in range({k}) %}}{{{{ {e} }}}}{{% endfor %}}"
    "{{% endfilter %}}",
    "{{% for x in ({e})|list recursive %}}{{{{ loop([x, x]) }}}}{{% endfor %}}",
    "{{% macro w() %}}{{% for i in range({k}) %}}{{{{ caller() }}}}{{% endfor %}}{{% endmacro %}}"
    "{{% call w() %}}{{{{ {e} }}}}{{% endcall %}}",
    "{{{{ {e} }}}}",
    "{{{{ {e} }}}}{{{{ {e} }}}}",
]


NAMESPACE = "{% set ns = namespace(s='ab', l=['ab']) %}"


def _statement(template: str, e: str, n: str, k: str, grow: str) -> str:
    return NAMESPACE + template.format(e=e, n=n, k=k, grow=grow)


GROW = st.builds(
    _apply,
    st.sampled_from(
        [
            "ns.s ~ ns.s",
            "ns.s + ns.s",
            "ns.s|replace('a', ns.s)",
            "ns.s|indent(100, true)",
            "ns.s|center(ns.s|length * 2)",
            "'%s%s' % (ns.s, ns.s)",
            "'{{0}}{{0}}'.format(ns.s)",
            "[ns.s, ns.s]|join(ns.s)",
            "ns.s * 2",
            "ns.s|wordwrap(1, wrapstring=ns.s)",
            "(ns.s ~ {e})|truncate(10**9)",
        ]
    ),
    expressions(1),
    NUMBERS,
)
LOOPS = st.sampled_from(["3", "15", "40", "1000"])


def templates() -> st.SearchStrategy[str]:
    """One hostile template body."""
    return st.builds(_statement, st.sampled_from(STATEMENTS), expressions(3), NUMBERS, LOOPS, GROW)
