"""A diff report in words: plain text for a terminal, Markdown for a pull request.

Both say the same things in the same order: each series' changed events, the
warnings, then the emails the next ``announce`` would send.
"""

from __future__ import annotations

import re
from itertools import groupby

from announcer.errors import Diagnostic
from announcer.workflow.diff import Change, Email, Report

MARKER = "<!-- announcer-diff -->"  # lets a bot find and update its own comment
SIGNS = {"added": "+", "removed": "-", "cancelled": "x"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#~!])")


def headline(report: Report) -> str:
    counts: dict[str, int] = {}
    for item in report.changes:
        counts[item.kinds[0]] = counts.get(item.kinds[0], 0) + 1
    if not counts:
        return "no change for subscribers"
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def _when(report: Report) -> str:
    return f"{report.now:%Y-%m-%d %H:%M} UTC"


# --- text ----------------------------------------------------------------------------------------


def text(report: Report) -> str:
    lines = [f"Against {report.against} ({report.commit}): {headline(report)}"]
    lines += [f"note: {note}" for note in report.notes]
    for series, items in groupby(report.changes, key=lambda c: c.series):
        lines += ["", series]
        for item in items:
            lines += _text_change(item)
    if report.warnings:
        lines.append("")
        lines += [f"warning: {warning}" for warning in report.warnings]
    lines += ["", f"Emails the next 'announce' would send (as of {_when(report)}):"]
    lines += [_text_email(e) for e in report.emails] or ["  none"]
    return "\n".join(lines) + "\n"


def _text_change(item: Change) -> list[str]:
    sign = SIGNS.get(item.kinds[0], "~")
    first = f"  {sign} {', '.join(item.kinds):<12} {item.ident}  {item.title}"
    return [first, *(f"{'':17}{detail}" for detail in item.details)]


def _text_email(email: Email) -> str:
    tail = "  (due because of this change)" if email.new else ""
    return f"  {email.kind:<12} {email.key}  {email.title}{tail}"


# --- Markdown ------------------------------------------------------------------------------------


def markdown(report: Report) -> str:
    lines = [MARKER, "### What subscribers will see change", ""]
    lines.append(
        f"Compared with `{_code(report.against)}` (`{report.commit}`): {headline(report)}."
    )
    lines += [f"\n_Note: {escape(note)}._" for note in report.notes]
    if report.changes:
        lines += ["", "| Change | Event | Details |", "| --- | --- | --- |"]
        lines += [_md_row(item) for item in report.changes]
    for warning in report.warnings:
        lines += ["", "> [!WARNING]", f"> {escape(warning)}"]
    lines += ["", f"#### Emails the next `announce` would send (as of {_when(report)})", ""]
    lines += [_md_email(e) for e in report.emails] or ["None."]
    return "\n".join(lines) + "\n"


def _md_row(item: Change) -> str:
    event = f"**{escape(item.title)}**<br>`{_code(item.key)}`"
    details = "<br>".join(escape(d) for d in item.details)
    return f"| {', '.join(item.kinds)} | {event} | {details} |"


def _md_email(email: Email) -> str:
    tail = " (due because of this change)" if email.new else ""
    return f"- **{email.kind}**: {escape(email.title)} (`{_code(email.key)}`){tail}"


def escape(value: str) -> str:
    """Organisers' text shown as written: no accidental emphasis, links or table breaks."""
    flat = " ".join(value.split()).replace(" -> ", " → ")
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _code(value: str) -> str:
    return value.replace("`", "'")


def errors_markdown(diagnostics: list[Diagnostic]) -> str:
    """The check errors, for a pull request whose files do not load."""
    count = len(diagnostics)
    lines = [MARKER, f"### announcer check found {count} error{'s' if count != 1 else ''}", ""]
    lines += [
        f"- `{_code(d.path)}` line {d.line}: {escape(d.message)}"
        + (f" ({escape(d.hint)})" if d.hint else "")
        for d in diagnostics
    ]
    lines += ["", "Nothing can be published until they are fixed."]
    return "\n".join(lines) + "\n"
