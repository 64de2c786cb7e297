"""Per-submission feedback: a readable report in Markdown and in HTML.

Rendered from a :class:`autograder.report.Report` (or the ``report.json`` that
``autograder grade-all`` keeps next to each student's ``results.json``). Both
formats carry the same content: the total, one row per task, and for every
task whose details the audience may see, each failing test with the grader's
message (and, for the instructor only, its seed: seeds are secret, see
docs/threat-model.md). Those messages never contain the hidden tests' source
(the plugin replaces pytest's traceback by a short message); the feedback adds
nothing from the suite either.

Audiences (``tasks.toml`` visibility decides what each one sees):

``student`` (default)
    Details and scores of ``visible`` tasks only. Every other task is listed
    as "hidden until grades are released", with no score and no message, and
    the total is given for the visible tasks only.
``released``
    For after grades are released: details of every task except ``hidden``
    ones, which show their score but no messages.
``instructor``
    Everything, including the grader's internal errors, the sandbox status
    and the data source.

Everything taken from the report is escaped: Markdown special characters in
running text, messages in code blocks whose fence is longer than any run of
backticks inside them, and ``html.escape`` for every HTML text node. The HTML
page is self-contained (inline style, no scripts, no external assets).
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from autograder.report import Report, TaskResult, TestResult, cite, failure_groups, failure_text

__all__ = [
    "AUDIENCES",
    "DEFAULT_AUDIENCE",
    "FeedbackView",
    "build_view",
    "render_html",
    "render_markdown",
    "report_from_dict",
]

AUDIENCES = ("student", "released", "instructor")
DEFAULT_AUDIENCE = "student"
HIDDEN_NOTE = "hidden until grades are released"
DETAILS_WITHHELD = "score only (details are not shown)"
GRADER_FAULT = ("the grader itself failed here; this is not your fault and your "
                "instructor has been told")

# Which visibilities show their details (messages) / their score, per audience.
_DETAILS = {
    "student": frozenset({"visible"}),
    "released": frozenset({"visible", "after_due_date", "after_published"}),
    "instructor": frozenset({"visible", "after_due_date", "after_published", "hidden"}),
}
_SCORES = {
    "student": frozenset({"visible"}),
    "released": _DETAILS["instructor"],
    "instructor": _DETAILS["instructor"],
}


# -- a format-neutral view of the report -------------------------------------------
@dataclass
class FailureView:
    """One failing test: its name, seed and the grader's message."""

    name: str
    seed: int | None
    message: str
    #: further tests that failed with the same message: (name, seed)
    others: list[tuple[str, int | None]] = field(default_factory=list)
    #: the task under which this message is shown in full, when it is not this one
    shown_under: str | None = None

    def tests(self) -> list[tuple[str, int | None]]:
        """(name, seed) of every test this failure applies to."""
        return [(self.name, self.seed), *self.others]

    def count_note(self) -> str:
        """" (the same failure in N tests)" when it applies to more than one."""
        return f" (the same failure in {1 + len(self.others)} tests)" if self.others else ""

    def text(self) -> str:
        """The message, or a citation of it when another task shows it in full."""
        if self.shown_under is None:
            return self.message
        return f"{cite(self.message)}\n[the same message as under task {self.shown_under}, shown there in full]"


@dataclass
class TaskView:
    """One row of the task table and, when shown, its failures."""

    id: str
    title: str
    points: float
    score: float | None  # None: not shown to this audience
    result: str  # short text for the table
    failures: list[FailureView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # task-level lines (not graded, errors)
    detailed: bool = True


@dataclass
class FeedbackView:
    """What a feedback file says, independent of its format."""

    title: str
    student: str | None
    audience: str
    score_line: str
    problems: list[str]
    notes: list[str]
    tasks: list[TaskView]
    footer: list[str]


def _num(x: float) -> str:
    return f"{x:g}"


def _task_result(task: TaskResult, audience: str) -> str:
    if task.internal_error:
        return "grader error" if audience != "instructor" else "INTERNAL GRADER ERROR"
    if task.not_graded:
        return "not graded"
    counted = [t for t in task.tests if t.outcome in ("passed", "failed", "error")]
    failing = task.failing
    if not counted:
        return "not graded"
    if not failing:
        return "passed"
    return f"{failing} of {len(counted)} tests failed"


def _failures(tests: list[TestResult], task: TaskResult, shown: dict[tuple[str, str], str],
              instructor: bool) -> list[FailureView]:
    """One view per distinct message; a message already shown under another task is cited.

    Seeds are for the instructor's replay only: the base seed is secret.
    """
    views = []
    for group in failure_groups(tests):
        first, message = group[0], failure_text(group[0])
        where = shown.setdefault((message, task.visibility), task.id)
        others = [(g.name, g.seed if instructor else None) for g in group[1:]]
        views.append(FailureView(name=first.name, seed=first.seed if instructor else None,
                                 message=message, others=others,
                                 shown_under=None if where == task.id else where))
    return views


def build_view(report: Report, *, student: str | None = None,
               audience: str = DEFAULT_AUDIENCE) -> FeedbackView:
    """The content of a feedback file for ``audience`` (see the module docstring)."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}; choose one of {', '.join(AUDIENCES)}")
    details, scores = _DETAILS[audience], _SCORES[audience]
    instructor = audience == "instructor"
    tasks: list[TaskView] = []
    shown_score = shown_max = 0.0
    withheld = 0.0
    shown: dict[tuple[str, str], str] = {}  # (message, visibility) -> task showing it in full
    for task in report.tasks:
        show_score = task.visibility in scores
        show_details = task.visibility in details
        if not show_score:
            withheld += task.points
            tasks.append(TaskView(id=task.id, title=task.title, points=task.points, score=None,
                                  result=HIDDEN_NOTE, detailed=False))
            continue
        shown_score += task.score
        shown_max += task.points
        view = TaskView(id=task.id, title=task.title, points=task.points, score=task.score,
                        result=_task_result(task, audience) if show_details else
                        DETAILS_WITHHELD, detailed=show_details)
        if show_details:
            if task.internal_error:
                view.notes.append(f"internal grader error: {task.internal_error}"
                                  if instructor else GRADER_FAULT)
            if task.not_graded:
                view.notes.append(task.not_graded)
            # an internal failure is the grader's, not the student's: instructors only
            view.failures = _failures([t for t in task.tests if instructor or not t.internal],
                                      task, shown, instructor)
            measured = [t.note for t in task.tests if t.note and t.outcome == "passed"]
            if measured and view.result == "passed":
                view.result = f"passed ({'; '.join(measured)})"
        tasks.append(view)
    if withheld:
        score_line = (f"Score on the tasks shown here: {_num(round(shown_score, 2))} / "
                      f"{_num(shown_max)} points. The other {_num(withheld)} points come from "
                      f"tasks whose results are {HIDDEN_NOTE}.")
    else:
        score_line = f"Score: {_num(report.score)} / {_num(report.max_score)} points"
    problems: list[str] = []
    if report.submission_problem:
        problems.append(f"Your submission could not be graded: {report.submission_problem}")
    if report.internal_errors:
        if instructor:
            problems.extend(f"internal grader error: {m}" for m in report.internal_errors)
        else:
            problems.append(f"The grader itself failed while grading your submission: "
                            f"{GRADER_FAULT}.")
    footer: list[str] = []
    if instructor:  # the seeds replay the grading (--seed): never shown to students
        footer.append(f"seed {report.seed} (every randomized test's own seed is given with it)")
        footer.append(f"data: {report.data_source}")
        footer.append(f"sandbox: {'isolated' if report.isolated else 'NOT isolated'} "
                      f"({report.isolation_note})")
        footer.append(f"grading took {report.execution_time:.1f} s")
    return FeedbackView(
        title=f"Feedback on {report.assignment}", student=student, audience=audience,
        score_line=score_line, problems=problems,
        notes=[n.removeprefix("note: ") for n in report.notes], tasks=tasks, footer=footer,
    )


# -- Markdown -----------------------------------------------------------------------
# What Markdown (CommonMark with GitHub's tables and strikethrough) reads as syntax in
# running text: backslash, code, emphasis, links, raw HTML, table cells, strikethrough;
# "_" only where it can open or close emphasis (not inside a word, as in task ids); "&"
# only where it starts an entity. Parentheses, braces, "#", "+", "!"... are only syntax
# at the start of a line or after "]" (escaped): left alone, so "(correct and fast)"
# reads as written.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?\w+;)")
# Block syntax at the start of the text (a heading, quote, list item, rule, table row).
_MD_LEADING = re.compile(r"^(?:[#>+=-]|\d+(?=[.)]))")


def _md_escape_match(m: re.Match[str]) -> str:
    return "\\" + m.group(0)


def md_escape(text: str) -> str:
    """``text`` as literal Markdown inline text (one line, only what Markdown reads escaped)."""
    one_line = " ".join(str(text).split())
    escaped = _MD_SPECIAL.sub(_md_escape_match, one_line)
    lead = _MD_LEADING.match(escaped)
    if lead:
        if lead.group(0)[0].isdigit():  # "1." / "1)": escape the delimiter after the number
            end = lead.end()
            return escaped[:end] + "\\" + escaped[end:]
        return "\\" + escaped
    return escaped


def md_code(text: str) -> str:
    """``text`` as an inline code span (one line) that nothing inside can close."""
    one_line = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def md_code_block(text: str) -> str:
    """``text`` in a fenced code block that nothing inside can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    return f"{fence}text\n{body}\n{fence}"


def _md_score(task: TaskView) -> str:
    return "-" if task.score is None else f"{_num(task.score)} / {_num(task.points)}"


def render_markdown(report: Report, *, student: str | None = None,
                    audience: str = DEFAULT_AUDIENCE) -> str:
    """The feedback as a Markdown document."""
    v = build_view(report, student=student, audience=audience)
    out = [f"# {md_escape(v.title)}", ""]
    if v.student is not None:
        out += [f"Student: {md_escape(v.student)}", ""]
    out += [f"**{md_escape(v.score_line)}**", ""]
    for p in v.problems:
        out += [f"> **{md_escape(p)}**", ""]
    for n in v.notes:
        out += [f"- note: {md_escape(n)}"]
    if v.notes:
        out.append("")
    out += ["| task | title | score | result |", "| --- | --- | ---: | --- |"]
    for t in v.tasks:
        out.append(f"| {md_code(t.id)} | {md_escape(t.title)} | {_md_score(t)} | "
                   f"{md_escape(t.result)} |")
    out.append("")
    troubled = [t for t in v.tasks if t.failures or t.notes]
    if troubled:
        out += ["## What failed and why", ""]
        for t in troubled:
            out += [f"### {md_code(t.id)}: {md_escape(t.title)} ({_md_score(t)})", ""]
            for n in t.notes:
                out += [f"- {md_escape(n)}"]
            if t.notes:
                out.append("")
            for f in t.failures:
                names = ", ".join(md_code(n) + (f" (seed {sd})" if sd is not None else "")
                                  for n, sd in f.tests())
                out += [names + f.count_note(), "", md_code_block(f.text()), ""]
    elif not v.problems:
        out += ["Every test that is shown here passed.", ""]
    out += ["---", ""]
    out += [f"- {md_escape(line)}" for line in v.footer]
    return "\n".join(out).rstrip("\n") + "\n"


# -- HTML ---------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .35rem .6rem; text-align: left; vertical-align: top; }
td.score { text-align: right; white-space: nowrap; }
tr.passed td.result { color: #14622b; }
tr.failed td.result { color: #9b1c1c; }
tr.withheld td { color: #666; font-style: italic; }
pre { background: #f5f5f5; border: 1px solid #ddd; padding: .6rem; overflow-x: auto;
      white-space: pre-wrap; word-break: break-word; }
.problem { border-left: 4px solid #9b1c1c; background: #fdf0f0; padding: .5rem .8rem; }
.total { font-size: 1.2rem; font-weight: 600; }
footer { color: #555; font-size: .9rem; border-top: 1px solid #ddd; margin-top: 2rem; }
""".strip()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _row_class(t: TaskView) -> str:
    if t.score is None or not t.detailed:
        return "withheld"
    return "passed" if t.result == "passed" else "failed"


def render_html(report: Report, *, student: str | None = None,
                audience: str = DEFAULT_AUDIENCE) -> str:
    """The feedback as a self-contained HTML page (everything escaped)."""
    v = build_view(report, student=student, audience=audience)
    title = v.title + (f" ({v.student})" if v.student is not None else "")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        'style-src \'unsafe-inline\'">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(v.title)}</h1>",
    ]
    if v.student is not None:
        out.append(f"<p>Student: <strong>{_e(v.student)}</strong></p>")
    out.append(f'<p class="total">{_e(v.score_line)}</p>')
    for p in v.problems:
        out.append(f'<p class="problem">{_e(p)}</p>')
    if v.notes:
        out.append("<ul>" + "".join(f"<li>note: {_e(n)}</li>" for n in v.notes) + "</ul>")
    out.append("<table>")
    out.append("<thead><tr><th>task</th><th>title</th><th>score</th><th>result</th></tr>"
               "</thead><tbody>")
    for t in v.tasks:
        score = "&ndash;" if t.score is None else f"{_e(_num(t.score))} / {_e(_num(t.points))}"
        out.append(f'<tr class="{_row_class(t)}"><td><code>{_e(t.id)}</code></td>'
                   f"<td>{_e(t.title)}</td><td class=\"score\">{score}</td>"
                   f'<td class="result">{_e(t.result)}</td></tr>')
    out.append("</tbody></table>")
    troubled = [t for t in v.tasks if t.failures or t.notes]
    if troubled:
        out.append("<h2>What failed and why</h2>")
        for t in troubled:
            score = "" if t.score is None else f" ({_e(_num(t.score))} / {_e(_num(t.points))})"
            out.append(f"<h3><code>{_e(t.id)}</code>: {_e(t.title)}{score}</h3>")
            if t.notes:
                out.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in t.notes) + "</ul>")
            for f in t.failures:
                names = ", ".join(f"<strong>{_e(n)}</strong>"
                                  + (f" (seed {_e(sd)})" if sd is not None else "")
                                  for n, sd in f.tests())
                out.append(f"<p>{names}{_e(f.count_note())}</p>")
                out.append(f"<pre>{_e(f.text())}</pre>")
    elif not v.problems:
        out.append("<p>Every test that is shown here passed.</p>")
    out.append("<footer><ul>" + "".join(f"<li>{_e(line)}</li>" for line in v.footer)
               + "</ul></footer>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# -- reading a report back ------------------------------------------------------------
def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def report_from_dict(data: dict[str, Any]) -> Report:
    """Rebuild a :class:`Report` from :meth:`Report.to_dict` output (e.g. ``report.json``)."""
    tasks = []
    for t in data.get("tasks", []):
        tests = [TestResult(**_pick(TestResult, r)) for r in t.get("tests", [])]
        tasks.append(TaskResult(**{**_pick(TaskResult, t), "tests": tests}))
    return Report(**{**_pick(Report, data), "tasks": tasks})


def write_feedback(report: Report, directory: str | os.PathLike[str], *,
                   student: str | None = None,
                   audience: str = DEFAULT_AUDIENCE) -> tuple[Path, Path]:
    """Write ``feedback.md`` and ``feedback.html`` into ``directory`` (not atomically)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    md, page = d / "feedback.md", d / "feedback.html"
    md.write_text(render_markdown(report, student=student, audience=audience), encoding="utf-8")
    page.write_text(render_html(report, student=student, audience=audience), encoding="utf-8")
    return md, page
