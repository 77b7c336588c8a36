"""Defect 9 of issue 13: messages rendered to a folder never overwrite each other or leave it,
and a preview field set to text where a number is expected is a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendwise.content.batch import file_name
from sendwise.content.render import Renderer, preview
from sendwise.errors import InputError

ODD = ["jane@x.com", "jane@x.org", "JANE@x.com", "../x", "/etc/x", "a\x00b", "x" * 5000, ".", ""]


@given(st.lists(st.text(min_size=0, max_size=300), min_size=2, max_size=20, unique=True))
def test_file_names_are_distinct_even_ignoring_case_and_stay_in_the_folder(ids) -> None:
    names = [file_name(i) for i in ids]
    assert len({n.lower() for n in names}) == len(ids)
    folder = Path("/out")
    for name in names:
        assert name and "/" not in name and "\x00" not in name and len(name) < 120
        assert (folder / f"{name}.eml").resolve().parent == folder
        assert Path(f"{name}").with_suffix(".eml").name == f"{name}.eml"


def test_the_issue_ids_get_distinct_safe_names() -> None:
    names = [file_name(i) for i in ODD]
    assert len(set(names)) == len(ODD)
    assert file_name("C0000042") == "C0000042"  # plain ids stay readable


def test_preview_set_text_for_a_number_is_a_one_line_error(project) -> None:
    settings, _ = project
    with pytest.raises(InputError, match="p_purchase is a number"):
        preview(Renderer(settings), "newsletter.html", {"p_purchase": "abc"})
