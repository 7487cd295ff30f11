"""SMTP throughput: announcer's outbox and SMTP transport against a bare smtplib loop.

Usage: python benchmarks/smtp.py [--messages 10000] [--size 20000] [--repeat 3]
                                 [--pool N] [--workdir DIR] [--json FILE]

Builds N distinct per-recipient announcements (text + HTML + an .ics attachment,
about ``--size`` bytes each, shaped like announcer's own), starts Postfix's
``smtp-sink`` on 127.0.0.1 (it discards what it receives), then measures A B A B:

A  announcer: plan every message into a fresh durable outbox (SQLite on disk,
   WAL, synchronous=FULL), then ``deliver_pending`` through ``SmtpTransport``;
B  a bare ``smtplib.SMTP`` loop, one connection, ``sendmail`` per message, the
   same bytes.

Prints msg/s for each run, the median of the paired ratios A/B, the machine
and the commands; ``--json`` saves every run. Each A run must leave all N
messages ``sent`` in its outbox, and the sink must count N messages per run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from announcer.delivery.outbox import Outbox, PlannedMessage, deliver_pending
from announcer.delivery.smtp import SmtpSettings, SmtpTransport
from measure import cpu_model, filesystem, total_memory

SMTP_SINK = Path("/usr/sbin/smtp-sink")
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
INSTALL_HINT = """\
smtp-sink (from Debian's postfix package) is not installed. Install it without
setting up or starting a mail system:

    sudo sh benchmarks/install-smtp-sink.sh

which preseeds 'postfix postfix/main_mailer_type select No configuration',
forbids service starts during the install (policy-rc.d), then runs
'apt-get install -y --no-install-recommends postfix'."""
TARGET = 1000.0  # msg/s for announcer's path with the outbox durable (issue 6)
HOST = "127.0.0.1"
SENDER = Address("Policy Seminars", "seminars", "example.org")
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
PROSE = (
    "cities publish more data than ever but who uses it and for what this talk looks at "
    "open portals in twelve municipalities asks how numbers change decisions budgets "
    "transit housing councils residents evidence policy research methods survey results "
    "accountability transparency participation municipal governance public services"
)
WORDS = tuple(PROSE.split())
NAMES = ("Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Gao", "Hélène", "Ines", "José")


# -- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """What every recipient's copy of the announcement shares."""

    paragraphs: tuple[str, ...]
    calendar: bytes


def abstract(length: int, seed: int = 1) -> tuple[str, ...]:
    """Deterministic paragraphs of prose, about ``length`` characters in all."""
    rng = random.Random(seed)
    paragraphs, left = [], length
    while left > 0:
        words = [rng.choice(WORDS) for _ in range(rng.randint(60, 110))]
        text = (" ".join(words).capitalize() + ".")[:left]
        paragraphs.append(text)
        left -= len(text)
    return tuple(paragraphs)


def calendar(paragraphs: Sequence[str]) -> bytes:
    """An event.ics like announcer's: VTIMEZONE, one VEVENT, a long folded DESCRIPTION."""
    description = "\\n\\n".join(p.replace(",", "\\,") for p in paragraphs)
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//announcer//announcer calendar//EN",
        "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "BEGIN:VTIMEZONE", "TZID:America/Toronto",
        "BEGIN:STANDARD", "DTSTART:20261101T020000", "TZNAME:EST", "TZOFFSETFROM:-0400",
        "TZOFFSETTO:-0500", "END:STANDARD", "BEGIN:DAYLIGHT", "DTSTART:20260308T030000",
        "TZNAME:EDT", "TZOFFSETFROM:-0500", "TZOFFSETTO:-0400", "END:DAYLIGHT",
        "END:VTIMEZONE", "BEGIN:VEVENT", "SUMMARY:Open data in cities",
        "DTSTART;TZID=America/Toronto:20261204T120000",
        "DTEND;TZID=America/Toronto:20261204T133000", "DTSTAMP:20261127T140000Z",
        "UID:talk.seminars@announcer", "SEQUENCE:0", f"DESCRIPTION:{description}",
        "LOCATION:Room 2200\\, 1 Main Street", "STATUS:CONFIRMED",
        "URL;VALUE=URI:https://events.example.org/seminars/talk/", "END:VEVENT", "END:VCALENDAR",
    ]
    return "".join(_fold(line) for line in lines).encode("utf-8")


def _fold(line: str) -> str:
    chunks = [line[i:i + 74] for i in range(0, len(line), 74)]
    return "\r\n ".join(chunks) + "\r\n"


def content(length: int) -> Content:
    paragraphs = abstract(length)
    return Content(paragraphs, calendar(paragraphs))


def recipient(index: int) -> Address:
    name = f"{NAMES[index % len(NAMES)]} Person{index:05d}"
    return Address(name, f"person{index:05d}", "example.org")


def email_for(shared: Content, index: int) -> EmailMessage:
    """One recipient's announcement, built as announcer's compose builds it."""
    to = recipient(index)
    unsubscribe = f"https://example.org/u?e=person{index:05d}%40example.org"
    message = EmailMessage()
    message["Subject"] = "Open data in cities (Dec 4, 2026)"
    message["From"] = SENDER
    message["To"] = to
    message["Date"] = format_datetime(NOW)
    digest = hashlib.sha256(f"talk\0{to.addr_spec}".encode()).hexdigest()[:24]
    message["Message-ID"] = f"<announcement.0.{digest}@example.org>"
    message["List-Id"] = "Policy Seminars <seminars.events.example.org>"
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text_part(shared, to, unsubscribe), cte="quoted-printable")
    message.add_alternative(html_part(shared, to, unsubscribe), subtype="html",
                            cte="quoted-printable")
    message.add_attachment(shared.calendar, maintype="text", subtype="calendar",
                           filename="event.ics", params={"method": "PUBLISH", "charset": "utf-8"})
    for part in message.iter_parts():
        _tidy(part)
    for depth, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"=_{depth}_{digest}")
    return message


def _tidy(part: MIMEPart) -> None:
    del part["MIME-Version"]
    for child in part.iter_parts() if part.is_multipart() else ():
        _tidy(child)


def text_part(shared: Content, to: Address, unsubscribe: str) -> str:
    body = "\n\n".join(shared.paragraphs)
    return (
        f"Dear {to.display_name},\n\nYou are invited to the next event of Policy Seminars.\n\n"
        "Open data in cities\n\nWhen: Friday, December 4, 2026, 12:00\u2009\u2013\u200913:30 EST\n"
        "Location: Room 2200, 1 Main Street\n\n"
        f"{body}\n\nEvent page: https://events.example.org/seminars/talk/\n\n"
        f"Unsubscribe: {unsubscribe}\n"
    )


def html_part(shared: Content, to: Address, unsubscribe: str) -> str:
    body = "\n".join(
        f'<p style="margin:0 0 12px">{p} <a href="https://example.org/data" '
        f'rel="noopener nofollow">open data</a></p>'
        for p in shared.paragraphs
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>Open data in cities (Dec 4, 2026)</title>\n</head>\n"
        '<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif">\n'
        f'<div style="max-width:600px;margin:0 auto">\n<p>Dear {to.display_name},</p>\n'
        '<h1 style="font-size:22px"><a href="https://events.example.org/seminars/talk/">'
        "Open data in cities</a></h1>\n<table role=\"presentation\">\n"
        "<tr><th scope=\"row\">When</th><td>Friday, December 4, 2026, 12:00 \u2013 13:30 EST"
        "</td></tr>\n<tr><th scope=\"row\">Location</th><td>Room 2200, 1 Main Street</td></tr>\n"
        f"</table>\n<div>{body}</div>\n"
        f'<p style="font-size:13px"><a href="{unsubscribe}">Unsubscribe</a></p>\n'
        "</div>\n</body>\n</html>\n"
    )


def planned(email: EmailMessage, index: int) -> PlannedMessage:
    """What announcer's pipeline plans for one composed message."""
    key = f"seminars/talk announcement.0 person{index:05d}@example.org"
    return PlannedMessage.from_email(key, email, kind="announcement", event_key="seminars/talk")


def sized_content(size: int) -> Content:
    """Content whose messages come out at about ``size`` bytes (a linear fit of two trials)."""
    small, large = 0, 8000
    at_small = len(planned(email_for(content(small), 0), 0).raw)
    at_large = len(planned(email_for(content(large), 0), 0).raw)
    per_char = (at_large - at_small) / large
    return content(max(0, round((size - at_small) / per_char)))


def build(count: int, size: int) -> tuple[list[PlannedMessage], float]:
    """``count`` distinct messages and the seconds ``PlannedMessage.from_email`` took."""
    shared = sized_content(size)
    emails = [email_for(shared, index) for index in range(count)]
    started = time.perf_counter()
    messages = [planned(email, index) for index, email in enumerate(emails)]
    return messages, time.perf_counter() - started


# -- the sink ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def sink_command(port: int) -> list[str]:
    """smtp-sink on 127.0.0.1: ESMTP and PIPELINING on (its defaults), nothing written to disk."""
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it must drop root privileges
    return [str(SMTP_SINK), "-c", *user, f"{HOST}:{port}", "1000"]


class Sink:
    """A running smtp-sink; ``received()`` reads its running message counter (``-c``)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.command = sink_command(self.port)
        self._log = folder / "smtp-sink.out"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SystemExit(f"smtp-sink exited: {self._log.read_text(errors='replace')}")
            with socket.socket() as probe:
                if probe.connect_ex((HOST, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit("smtp-sink did not start listening")

    def received(self) -> int:
        counts = re.findall(rb"mesg=(\d+)", self._log.read_bytes())
        return int(counts[-1]) if counts else 0

    def wait_for(self, total: int, timeout: float = 5.0) -> int:
        """The counter once it reaches ``total`` (or whatever it says after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (seen := self.received()) < total and time.monotonic() < deadline:
            time.sleep(0.02)
        return seen

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextmanager
def running_sink(folder: Path) -> Iterator[Sink]:
    sink = Sink(folder)
    try:
        yield sink
    finally:
        sink.stop()


# -- the two contenders --------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One timed run; ``plan`` and ``deliver`` are announcer's two phases (B has neither)."""

    tool: str
    round: int
    messages: int
    seconds: float
    plan: float | None = None
    deliver: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def run_announcer(
    messages: Sequence[PlannedMessage], port: int, pool: int, workdir: Path, round_: int
) -> Result:
    """A: plan into a fresh outbox on disk, then deliver; every message must end ``sent``."""
    folder = Path(tempfile.mkdtemp(prefix="outbox-", dir=workdir))
    settings = SmtpSettings(host=HOST, port=port, security="none", pool_size=pool)
    try:
        outbox = Outbox.open(folder)
        try:
            started = time.perf_counter()
            outbox.plan(messages)
            planned_at = time.perf_counter()
            report = deliver_pending(outbox, SmtpTransport(settings))
            outbox.close()  # what an announce run pays before it ends
            done = time.perf_counter()
        finally:
            outbox.close()  # closing again is harmless
        with Outbox.open(folder) as reopened:
            check_outbox(reopened, report.describe(), len(messages))
    finally:
        shutil.rmtree(folder)
    return Result("announcer", round_, len(messages), done - started,
                  planned_at - started, done - planned_at)


def check_outbox(outbox: Outbox, described: str, count: int) -> None:
    summary = outbox.summary()
    if summary.sent != count or summary.total != count:
        raise SystemExit(f"outbox: {summary} after a run that reported {described}")


def run_smtplib(messages: Sequence[PlannedMessage], port: int, round_: int) -> Result:
    """B: one smtplib connection, ``sendmail`` per message, the same bytes."""
    started = time.perf_counter()
    with smtplib.SMTP(HOST, port) as client:
        for message in messages:
            refused = client.sendmail(message.sender, list(message.recipients), message.raw)
            if refused:
                raise SystemExit(f"smtplib: {message.key} refused: {refused}")
    return Result("smtplib", round_, len(messages), time.perf_counter() - started)


def run_source(count: int, size: int, port: int) -> tuple[list[str], float]:
    """smtp-source (C, one connection reused, no pipelining): what the sink itself can take."""
    command = [str(SMTP_SOURCE), "-d", "-s", "1", "-m", str(count), "-l", str(size),
               "-f", "seminars@example.org", "-t", "person@example.org", f"{HOST}:{port}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return command, count / (time.perf_counter() - started)


# -- the measurement -----------------------------------------------------------------------------


def measure(
    messages: Sequence[PlannedMessage], args: argparse.Namespace, sink: Sink, workdir: Path
) -> list[Result]:
    """A B A B: ``args.repeat`` rounds; the sink must count every message of every run."""
    results: list[Result] = []
    for round_ in range(1, args.repeat + 1):
        for tool in ("announcer", "smtplib"):
            before = sink.received()
            if tool == "announcer":
                result = run_announcer(messages, sink.port, args.pool, workdir, round_)
            else:
                result = run_smtplib(messages, sink.port, round_)
            seen = sink.wait_for(before + len(messages)) - before
            if seen != len(messages):
                raise SystemExit(f"{tool}: smtp-sink counted {seen} messages, not {len(messages)}")
            results.append(result)
            print(f"  round {round_} {tool:9} {result.rate:8,.0f} msg/s ({result.seconds:.2f} s)",
                  flush=True)
    return results


def paired_ratios(results: Sequence[Result]) -> list[float]:
    """announcer's rate / smtplib's rate, per round."""
    rates: dict[int, dict[str, float]] = {}
    for result in results:
        rates.setdefault(result.round, {})[result.tool] = result.rate
    return [pair["announcer"] / pair["smtplib"] for _, pair in sorted(rates.items())]


def machine(workdir: Path) -> dict[str, Any]:
    memory = total_memory()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1) if memory else None,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "aiosmtplib": version("aiosmtplib"),
        "outbox_filesystem": filesystem(workdir),
        "load_average": round(os.getloadavg()[0], 2),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=20_000, help="bytes per message, about")
    parser.add_argument("--repeat", type=int, default=3, help="A B rounds")
    parser.add_argument("--pool", type=int, default=SmtpSettings(HOST).pool_size,
                        help="announcer's SMTP connections (default: its own default)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the outboxes go; must be on disk, not tmpfs")
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args(argv)
    if min(args.messages, args.size, args.repeat, args.pool) < 1:
        parser.error("--messages, --size, --repeat and --pool must be positive")
    return args


def summarise(results: Sequence[Result], reference: float | None) -> dict[str, Any]:
    ratios = paired_ratios(results)
    announcer = [r for r in results if r.tool == "announcer"]
    return {
        "announcer_msg_s": statistics.median(r.rate for r in announcer),
        "announcer_plan_s": statistics.median(r.plan or 0.0 for r in announcer),
        "announcer_deliver_s": statistics.median(r.deliver or 0.0 for r in announcer),
        "smtplib_msg_s": statistics.median(r.rate for r in results if r.tool == "smtplib"),
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "smtp_source_msg_s": reference,
    }


def print_summary(summary: dict[str, Any], count: int) -> None:
    announcer = summary["announcer_msg_s"]
    plan, deliver = summary["announcer_plan_s"], summary["announcer_deliver_s"]
    print(f"\nA announcer (plan + deliver): {announcer:,.0f} msg/s median"
          f" (plan {plan:.2f} s = {count / plan:,.0f} msg/s,"
          f" deliver {deliver:.2f} s = {count / deliver:,.0f} msg/s)")
    print(f"B smtplib loop:               {summary['smtplib_msg_s']:,.0f} msg/s median")
    ratios = ", ".join(f"{r:.2f}" for r in summary["ratios"])
    print(f"A/B median of paired ratios:  {summary['median_ratio']:.2f} ({ratios})")
    if summary["smtp_source_msg_s"]:
        print(f"smtp-source (C) reference:    {summary['smtp_source_msg_s']:,.0f} msg/s")
    verdict = "meets" if announcer >= TARGET else "MISSES"
    print(f"target >= {TARGET:,.0f} msg/s with the outbox durable: {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    if not SMTP_SINK.exists():
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    info = machine(args.workdir)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if info["outbox_filesystem"] in ("tmpfs", "ramfs"):
        print(f"warning: {args.workdir} is in memory, where fsync costs nothing; use --workdir")
    print(f"building {args.messages:,} messages of about {args.size:,} bytes ...", flush=True)
    messages, serialise = build(args.messages, args.size)
    sizes = [len(m.raw) for m in messages]
    print(f"  mean {statistics.mean(sizes):,.0f} bytes (min {min(sizes):,}, max {max(sizes):,});"
          f" PlannedMessage.from_email: {args.messages / serialise:,.0f} msg/s (not timed below)")
    with (
        tempfile.TemporaryDirectory(prefix="smtp-bench-") as scratch,
        running_sink(Path(scratch)) as sink,
    ):
        print(f"command: {shlex.join(sink.command)}")
        print(f"command: {shlex.join([sys.executable, *sys.argv])}")
        results = measure(messages, args, sink, args.workdir)
        source_command, reference = (
            run_source(args.messages, args.size, sink.port) if SMTP_SOURCE.exists()
            else ([], None)
        )
    if source_command:
        print(f"command: {shlex.join(source_command)}")
    summary = summarise(results, reference)
    print_summary(summary, args.messages)
    if args.json:
        save(args, info, sizes, serialise, results, summary, sink.command, source_command)
    return 0


def save(
    args: argparse.Namespace, info: dict[str, Any], sizes: Sequence[int], serialise: float,
    results: Sequence[Result], summary: dict[str, Any], *commands: Sequence[str],
) -> None:
    data = {
        "machine": info,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "message_bytes": {"mean": statistics.mean(sizes), "min": min(sizes), "max": max(sizes)},
        "from_email_seconds": serialise,
        "commands": [shlex.join(c) for c in commands if c],
        "runs": [asdict(r) | {"msg_s": r.rate} for r in results],
        "summary": summary,
    }
    args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
