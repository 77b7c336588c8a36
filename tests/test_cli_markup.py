"""Untrusted text is printed literally, never interpreted (issue 13, defect 7).

A rejected raw row, a first name, a rule or campaign name, a file or template name, an error
message: printed as it is, with control characters shown as visible escapes (``\\x1b``), never
as Rich markup, emoji codes or terminal escape sequences. Two layers of tests:

- properties: every printer of the CLI, given random markup-like strings in every field it
  prints, writes each string verbatim (neutralised) on a colour terminal, with no control
  character of its own making it through;
- end to end: the commands that print user data run on a project full of hostile strings
  (including the issue's reproduction: ``sendwise status`` with a ``[/bold]`` reject).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.cli.output import OUT, SafeConsole, line, neutralise, one_line, styled
from sendwise.errors import InputError, SendwiseError

MARKUP_BITS = [
    "[",
    "]",
    "[/",
    "[/bold]",
    "[bold]",
    "[red]x",
    "[/red]",
    "[link=https://evil.example/]",
    "[/link]",
    "[[",
    "]]",
    "\\",
    "\\[",
    "\\\\[b]",
    ":smile:",
    "[@click=app.quit]",
    "[on red]",
    "\x1b[31m",
    "\x1b[2J",
    "\x1b]8;;https://evil.example\x1b\\",
    "\x07",
    "\r",
    "\x08",
    "\x00",
    "\x7f",
    "\x9b31m",
    "\u202e",
    "\u2066",
    "%s",
    "{0}",
]

hostile = (
    st.lists(
        st.one_of(
            st.sampled_from(MARKUP_BITS),
            st.text(
                alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\t"),
                max_size=6,
            ),
        ),
        min_size=1,
        max_size=6,
    )
    .map("".join)
    .filter(lambda s: s.strip() != "")
)

SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colours Rich itself writes on a colour terminal
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def printed(draw: Any) -> str:
    """What ``draw(console)`` shows on a 3,000-column colour terminal, Rich's colours removed;
    asserts that nothing else reaches the terminal as a control character."""
    buffer = io.StringIO()
    console = SafeConsole(
        file=buffer, width=3000, force_terminal=True, color_system="truecolor", legacy_windows=False
    )
    draw(console)
    shown = SGR.sub("", buffer.getvalue())
    assert not CONTROL.search(shown), repr(shown)
    return shown


def assert_verbatim(shown: str, *values: str) -> None:
    for value in values:
        assert neutralise(value).strip() in shown, (value, shown)


# -- the output helpers ------------------------------------------------------------------------


@PROPERTY
@given(hostile)
def test_plain_strings_styled_and_lines_are_literal(s: str) -> None:
    shown = printed(
        lambda c: (
            c.print(s),
            c.print(styled(s, "bold")),
            c.print(line("a ", (s, "red"), " b ", s)),
            c.rule(s),
        )
    )
    assert_verbatim(shown, s)
    assert shown.count(neutralise(s).strip()) >= 5


def test_neutralise_shows_control_characters() -> None:
    assert neutralise("a\x1b[31mb") == "a\\x1b[31mb"
    assert neutralise("x\r\x07\u202e") == "x\\r\\x07\\u202e"
    assert neutralise("tab\tand\nline") == "tab\tand\nline"
    assert one_line("two\nlines\t!") == "two\\nlines\\t!"


# -- every printer, every field ------------------------------------------------------------------


@PROPERTY
@given(hostile, hostile, hostile, hostile)
def test_status_prints_rejects_and_loads_literally(name: str, rule: str, raw: str, source: str):
    from sendwise.cli import render
    from sendwise.warehouse.status import RejectGroup, TableStatus, WarehouseStatus

    when = datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    status = WarehouseStatus(
        tables=[TableStatus(name, 3, when, when)],
        rejects=[RejectGroup(name, rule, 2, f"{source}:3: {raw}")],
        loads=[
            {
                "finished_at": when,
                "source": f"/data/{source.replace('/', '_')}",
                "target": name,
                "read": 1,
                "loaded": 1,
                "rejected": 0,
            }
        ],
        unmatched_events=0,
    )
    shown = printed(lambda c: render.status(c, status))
    assert_verbatim(shown, name, rule, raw, source.replace("/", "_"))


@PROPERTY
@given(hostile, hostile, hostile, st.booleans())
def test_ingest_report_prints_file_names_and_rules_literally(
    file: str, rule: str, column: str, again: bool
) -> None:
    from sendwise.cli import render
    from sendwise.ingest.load import IngestReport
    from sendwise.warehouse.merge import MergeCounts

    file = file.replace("/", "_")
    report = IngestReport(
        "i1", f"/data/{file}", "customer", read=3, loaded=2, rejected=1,
        tables={"customer": MergeCounts(2, 0, 0, 1)}, rejects_by_rule={rule: 1},
        ignored_columns=[column], already_loaded=again,
    )  # fmt: skip
    shown = printed(lambda c: render.ingest_report(c, report))
    assert_verbatim(shown, file)
    if not again:
        assert_verbatim(shown, rule, column)


@PROPERTY
@given(hostile, hostile, hostile)
def test_profile_prints_every_field_literally(first_name: str, email: str, segment: str) -> None:
    from sendwise.cli import render

    profile = {
        "customer_id": "C1",
        "first_name": first_name,
        "email": email,
        "rfm_segment": segment,
        "segments": [segment, first_name],
        "favourite_category": first_name,
    }
    shown = printed(lambda c: render.profile(c, profile))
    assert_verbatim(shown, first_name, email, segment)


@PROPERTY
@given(hostile, hostile, hostile)
def test_profile_build_prints_rules_checks_and_clusters_literally(
    rule: str, message: str, description: str
) -> None:
    from sendwise.cli import render
    from sendwise.features.quality import CheckResult
    from sendwise.profiles.build import ProfileBuild

    built = ProfileBuild(
        as_of=datetime(2024, 1, 1, tzinfo=UTC),
        customers=10,
        checks=[CheckResult(rule, False, message, hard=True), CheckResult("x", True, message)],
        rfm_sizes={rule: 3},
        segment_sizes={rule: 4},
        clusters=[(0, description, 5)],
    )
    shown = printed(lambda c: render.profile_build(c, built))
    assert_verbatim(shown, rule, message, description)


@PROPERTY
@given(hostile, hostile, hostile, hostile, hostile)
def test_campaign_status_and_preview_print_names_literally(
    name: str, variant: str, reason: str, subject: str, text: str
) -> None:
    from sendwise.campaigns.overview import CampaignStatus, Preview
    from sendwise.cli.campaign import print_preview, print_status
    from sendwise.content.message import RenderedEmail

    counts = pd.DataFrame({"sent": [3], "skipped": [1]}, index=[variant])
    status = CampaignStatus("c1", name, "planned", counts, {reason: 1}, 0)
    email = RenderedEmail(subject, "pre", "<p>x</p>", text)
    preview = Preview("c1", 4, {variant: 3}, {reason: 1}, {"09": 4}, [(variant, name, email)])
    shown = printed(lambda c: (print_status(c, status), print_preview(c, preview)))
    assert_verbatim(shown, name, variant, reason, subject)
    if text.strip():  # the preview shows the text part stripped
        assert_verbatim(shown, text.strip())


@PROPERTY
@given(hostile, hostile, hostile)
def test_campaign_results_print_arms_and_notes_literally(name: str, arm: str, note: str) -> None:
    from sendwise.campaigns.results import Results
    from sendwise.campaigns.stats import SampleRatio
    from sendwise.cli.results_table import print_results

    row = {"n": 10, "delivered": 9, "open": 3, "click": 1, "unsubscribe": 0, "conversion": 1,
           "revenue": 12.5, "conversion_rate": 0.1, "conversion_low": 0.01,
           "conversion_high": 0.4}  # fmt: skip
    arms = pd.DataFrame([row, row], index=[arm, f"{arm}-2"])
    comparisons = pd.DataFrame(
        [{"arm": arm, "baseline": f"{arm}-2", "metric": "conversion", "estimate": 0.01,
          "low": -0.1, "high": 0.1, "test": "z", "p": 0.5, "p_holm": 0.5}]
    )  # fmt: skip
    res = Results(
        arms, comparisons, pd.DataFrame(), SampleRatio({arm: 10}, {arm: 1.0}, 0.5),
        name=name, notes=[note],
    )  # fmt: skip
    shown = printed(lambda c: print_results(c, res))
    assert_verbatim(shown, name, arm, note)


@PROPERTY
@given(hostile, hostile, hostile, hostile)
def test_models_print_metadata_literally(
    meaning: str, learner: str, reason: str, feature: str
) -> None:
    from sendwise.cli.models import print_scored, print_trained, show_model

    metadata = {
        "meaning": meaning,
        "learner": learner,
        "params": {"c": 1.0},
        "created_at": "2024-01-01T00:00:00",
        "plan": {"train_at": ["2023-12-01"], "evaluate_at": "2023-12-15", "as_of": "2024-01-01"},
        "metrics": {"roc_auc": 0.7},
        "baselines": {reason: {"roc_auc": 0.6}},
        "gate": {"passed": False, "reasons": [reason]},
        "importance": [{"feature": feature, "share": 0.5}],
    }
    version = SimpleNamespace(name="propensity", version="v0001", metadata=metadata,
                              folder="/nonexistent")  # fmt: skip
    trained = SimpleNamespace(
        name="propensity", version="v0001", learner=learner,
        metrics={"roc_auc": 0.7, "pr_auc": 0.2, "brier": 0.1},
        baselines={reason: {"roc_auc": 0.6}}, promoted=False, gate=[reason],
    )  # fmt: skip
    scored = SimpleNamespace(
        versions={"propensity": "v0001"}, customers=5, as_of=datetime(2024, 1, 1),
        seconds=1.0, missing=[feature], drifted={"propensity": [feature]},
    )  # fmt: skip
    shown = printed(
        lambda c: (show_model(c, version), print_trained(c, [trained]), print_scored(c, scored))
    )
    assert_verbatim(shown, meaning, learner, reason, feature)


@PROPERTY
@given(hostile, hostile)
def test_recommendation_summary_prints_sources_literally(source: str, algorithm: str) -> None:
    from sendwise.cli.recommend import show_build

    built = SimpleNamespace(
        customers=5, as_of=datetime(2024, 1, 1), rows=10, seconds=0.5, exclude_bought=True,
        repeat_share=0.1, weights={algorithm: 1.0}, sources={source: 10}, evaluation=None,
        holdout={algorithm: 0.5}, served=algorithm,
    )  # fmt: skip
    shown = printed(lambda c: show_build(c, built))
    assert_verbatim(shown, source, algorithm)


# -- errors: one literal line on stderr, exit code 1 -----------------------------------------


def _stderr_of(call: Any) -> tuple[int, str]:
    from sendwise.cli.registry import run_guarded

    buffer = io.StringIO()
    saved = OUT.err
    OUT.err = SafeConsole(file=buffer, width=3000, force_terminal=True, color_system="truecolor")
    try:
        code = run_guarded(call)
    finally:
        OUT.err = saved
    return code, SGR.sub("", buffer.getvalue())


@PROPERTY
@given(st.lists(st.one_of(hostile, st.just("\n"), st.just("\t")), min_size=1).map("".join))
def test_a_user_error_is_one_literal_line(message: str) -> None:
    def fail() -> None:
        raise InputError(message)

    code, shown = _stderr_of(fail)
    assert code == 1
    assert shown.count("\n") == 1 and shown.startswith("error: ")
    assert not CONTROL.search(shown)
    assert one_line(message).strip() in shown


def test_an_error_whose_message_cannot_be_printed_is_still_one_line() -> None:
    class Hostile(SendwiseError):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def fail() -> None:
        raise Hostile()

    code, shown = _stderr_of(fail)
    assert code == 1
    assert shown == "error: <Hostile whose message cannot be printed>\n"


# -- end to end: the commands on a project full of hostile strings -----------------------------

HOSTILE = [
    "[/bold]",
    "[red]x[link=https://evil.example/]y",
    "\x1b[31mred\x1b]0;title\x07",
    "\\[b]\u202e",
]
NAME = "Mx [/bold][red]\x1b[2J"


def shows(value: str, output: str) -> bool:
    """``value`` appears (neutralised) in ``output``; Rich may wrap it across lines."""
    return "".join(neutralise(value).split()) in "".join(output.split())


def _invoke(*args: str) -> Any:
    from typer.testing import CliRunner

    from sendwise.cli.app import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "3000"})
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert not CONTROL.search(output), repr(output)
    return result


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated shop, plus customers whose names and files are hostile."""
    folder = tmp_path_factory.mktemp("hostile") / "shop"
    assert _invoke("init", str(folder)).exit_code == 0
    r = _invoke("simulate", "--customers", "150", "--days", "200", "--seed", "3",
                "--project", str(folder), "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = ["customer_id,email,first_name"]
    for i, text in enumerate(HOSTILE):
        quoted = '"' + text.replace('"', '""') + '"'
        rows.append(f"X{i},x{i}@example.com,{quoted}")
    rows.append(f'X9,{HOSTILE[0]}not-an-email,"{HOSTILE[1]}"')
    csv = folder / "[red]people\x1b[31m.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = _invoke("ingest", str(csv), "--table", "customer", "--project", str(folder))
    assert r.exit_code == 0, r.output
    assert shows(csv.name, r.stdout)
    return folder


def test_status_with_a_markup_reject_prints_it(shop: Path) -> None:
    r = _invoke("status", "--project", str(shop))
    assert r.exit_code == 0, r.output
    assert shows("[/bold]not-an-email", r.stdout)
    assert shows("[red]people\x1b[31m.csv", r.stdout)


def test_profile_prints_a_hostile_first_name(shop: Path) -> None:
    r = _invoke("segment", "--project", str(shop), "-q", "--rule", f"{NAME}=frequency >= 0")
    assert r.exit_code in (0, 1), r.output
    if r.exit_code == 0:
        assert shows(NAME, r.stdout)
    else:
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
        r = _invoke("segment", "--project", str(shop), "-q")
        assert r.exit_code == 0, r.output
    for i, text in enumerate(HOSTILE):
        shown = _invoke("profile", f"X{i}", "--project", str(shop))
        assert shown.exit_code == 0, shown.output
        assert shows(text, shown.stdout)


def test_render_prints_a_hostile_name_in_subject_and_text(shop: Path) -> None:
    r = _invoke("render", "welcome.html", "--customer", "X0", "--project", str(shop))
    assert r.exit_code == 0, r.output
    assert r.stdout.count("[/bold]") >= 2  # the subject and the text part
    r = _invoke("render", "welcome.html", "--preview", "--set", f"first_name={HOSTILE[2]}",
                "--project", str(shop))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert shows(HOSTILE[2], r.stdout)


def test_a_campaign_with_a_hostile_name(shop: Path) -> None:
    definition = shop / "c.toml"
    escaped = NAME.replace("\\", "\\\\").replace("\x1b", "\\u001b")
    definition.write_text(
        f'name = "{escaped}"\nholdout = 10\nquiet_hours = false\ntemplate = "welcome.html"\n'
        '[audience]\nrule = "email is not null"\n',
        encoding="utf-8",
    )
    r = _invoke("campaign", "create", str(definition), "--project", str(shop))
    assert r.exit_code == 0, r.output
    assert shows(NAME, r.stdout)
    r = _invoke("campaign", "preview", NAME, "--project", str(shop))
    assert r.exit_code == 0, r.output
    assert "Subject:" in r.stdout
    r = _invoke("campaign", "status", NAME, "--project", str(shop))
    assert r.exit_code == 0, r.output
    assert shows(NAME, r.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ["templates", "tokens"],
        ["templates", "check"],
        ["templates", "variants", "newsletter.html"],
        ["models", "list"],
        ["campaign", "size", "--baseline", "0.1", "--lift", "0.1"],
    ],
)
def test_other_commands_on_a_hostile_project_print_no_control_characters(
    shop: Path, args: list[str]
) -> None:
    extra = [] if args[1] == "size" else ["--project", str(shop)]
    r = _invoke(*args, *extra)  # asserts: no traceback, no control character
    assert r.exit_code in (0, 1), r.output
    assert r.exit_code == 0 or r.stderr == "" or r.stderr.startswith("error: ")


@pytest.mark.parametrize(
    "args",
    [
        ["profile", "{H}"],
        ["templates", "check", "{H}.html"],
        ["render", "{H}.html", "--preview"],
        ["campaign", "status", "{H}"],
        ["models", "show", "{H}"],
        ["ingest", "{H}.csv", "--table", "customer"],
        ["segment", "--rule", "{H}"],
    ],
)
@pytest.mark.parametrize("text", HOSTILE)
def test_errors_carrying_user_input_are_one_literal_line(
    shop: Path, args: list[str], text: str
) -> None:
    r = _invoke(*[a.replace("{H}", text) for a in args], "--project", str(shop))
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "[" in r.stderr or "]" in r.stderr  # the bracketed text did not disappear


@pytest.mark.parametrize("text", HOSTILE)
def test_usage_errors_with_hostile_values_print_them_literally(text: str) -> None:
    r = _invoke(text)
    assert r.exit_code == 2
    r = _invoke("train", "--as-of", text)
    assert r.exit_code == 2
    assert "error: " in r.stderr


def test_the_issue_reproduction_in_a_real_process(tmp_path: Path) -> None:
    """`sendwise status` with a `[/bold]` reject: a MarkupError traceback before the fix."""
    env = {**os.environ, "COLUMNS": "200"}
    run = [sys.executable, "-m", "sendwise.cli"]
    folder = tmp_path / "shop"
    subprocess.run([*run, "init", str(folder)], check=True, capture_output=True, env=env)
    csv = folder / "c.csv"
    csv.write_text("customer_id,email\n1,[/bold]x\n2,a@b.co\n", encoding="utf-8")
    loaded = subprocess.run([*run, "ingest", str(csv), "--table", "customer", "-p", str(folder)],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    status = subprocess.run([*run, "status", "-p", str(folder)], capture_output=True, text=True,
                            env=env)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "Traceback" not in status.stderr
    assert "[/bold]x" in status.stdout


@PROPERTY
@given(hostile)
def test_log_lines_show_control_characters_as_escapes(s: str) -> None:
    import logging

    from sendwise.cli.output import SafeFormatter

    record = logging.LogRecord("sendwise.x", logging.WARNING, __file__, 1, "bad %s", (s,), None)
    shown = SafeFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert shown == f"WARNING sendwise.x: bad {neutralise(s)}"
    assert not CONTROL.search(shown)
