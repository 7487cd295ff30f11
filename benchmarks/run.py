"""Build benchmark: announcer against the baseline, side by side, at equal work.

Usage: python benchmarks/run.py [--sizes 1000,10000] [--repeat N] [--quick]
                                [--workdir DIR] [--json FILE]

For each size a tree is generated once (10 series, ``calendar: {past_days: all}``
and ``feeds: {limit: all}`` so every feed and calendar carries every event),
copied once per tool, then built as whole processes, A B A B: cold full build,
no-op rebuild, rebuild after one event changed. Then announcer alone builds the
same events with the shipped defaults (feeds of 50, combined and tag calendars
of the past year and the future), and the edit is to an upcoming event: what an
organiser sees. After each cold build of announcer, its output tree is written
again with bare system calls: the disk's share of a cold build at that moment.
Prints the machine, the commands and a Markdown table per size; ``--json``
saves every run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generate import generate
from measure import (
    Run,
    TreeStats,
    compiled,
    count_entries,
    count_vevents,
    cpu_probe,
    machine,
    median_ratio,
    run_process,
    snapshot,
    touched,
    tree_stats,
)

HERE = Path(__file__).resolve().parent
NOW = "2026-11-28T00:00:00Z"
SERIES = 10
EQUAL_WORK = "calendar:\n  past_days: all\nfeeds:\n  limit: all\n"
DEFAULTS = "defaults"  # the tree's suffix and the tool's name when announcer.yaml is left as is
SCENARIOS = ("cold", "noop", "one")
LABELS = {
    "cold": "cold full build",
    "noop": "no-op rebuild",
    "one": "rebuild after one event changed",
}
UPCOMING_LABEL = "rebuild after one upcoming event changed"
TARGETS = {"cold": 8.0, "noop": 0.6, "one": 1.5}  # seconds at 10,000 events (issue 6)
TARGET_RSS_MIB = 400
TARGET_SIZE = 10_000
BASELINE_NEEDS = {"markdown-it-py": "markdown_it", "feedgen": "feedgen",
                  "icalendar": "icalendar", "Jinja2": "jinja2", "PyYAML": "yaml"}
EXAMPLES = 5  # touched paths kept per build in --json
LOCATIONS = ("Benchmark Room A, Richcraft Hall", "Benchmark Room B, Richcraft Hall")


@dataclass
class Tool:
    """One builder with its own copy of the tree, output folder and cache folder."""

    name: str
    tree: Path
    out: Path
    cache: Path  # ANNOUNCER_CACHE_DIR and XDG_CACHE_HOME of every run
    discarded: Path  # where make_cold moves old outputs (see there)

    def env(self) -> dict[str, str]:
        """The environment of a build: this one, caches kept in the work folder."""
        return {**os.environ, "ANNOUNCER_CACHE_DIR": str(self.cache / "announcer"),
                "XDG_CACHE_HOME": str(self.cache)}

    def command(self) -> list[str]:
        """The exact command line of one build."""
        if self.name == "baseline":
            return [sys.executable, str(HERE / "baseline.py"), str(self.tree), str(self.out)]
        return [sys.executable, "-m", "announcer", "-C", str(self.tree), "build",
                "--out", str(self.out), "--now", NOW]

    def make_cold(self) -> None:
        """Set aside the output and remove any state a previous build left in the tree.

        The output is moved, not deleted: on ext4, creating files soon after
        deleting tens of thousands costs several times more system time (the
        inode allocator steps over every recently deleted inode), which would
        charge both tools for the benchmark's own clean-up.
        """
        for path in (self.out, self.out.with_name(f".{self.out.name}.staging")):
            discard(path, self.discarded)
        for path in (self.tree / ".announcer", self.cache):
            shutil.rmtree(path, ignore_errors=True)
        (self.tree / "ledger.json").unlink(missing_ok=True)


@dataclass
class Record:
    """One measured build."""

    scenario: str
    tool: str
    repeat: int
    wall: float
    cpu: float
    max_rss_kib: int
    touched: int  # output files created, removed or rewritten by this build
    examples: list[str]  # the first few of them, to see what a rebuild rewrote


@dataclass
class SizeResult:
    """Everything measured at one size."""

    events: int
    series: int
    repeat: int
    records: list[Record] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    floors: list[float] = field(default_factory=list)  # see measure_floor

    def walls(self, scenario: str, tool: str) -> list[float]:
        """Wall times of one scenario and tool, in run order."""
        return [r.wall for r in self.records if r.scenario == scenario and r.tool == tool]

    def touched(self, scenario: str, tool: str) -> list[int]:
        """Files touched by each build of one scenario and tool."""
        return [r.touched for r in self.records if r.scenario == scenario and r.tool == tool]

    def peak_kib(self, tool: str) -> int:
        """Highest peak RSS over every build of ``tool``."""
        return max(r.max_rss_kib for r in self.records if r.tool == tool)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000",
                        help="total events per tree, comma-separated (default 1000,10000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="A B pairs per figure (default 3 below 10,000 events, else 1)")
    parser.add_argument("--quick", action="store_true", help="only 1,000 events, one pair")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where trees and outputs go; generated trees are reused "
                             "(default: a temporary folder, removed afterwards)")
    parser.add_argument("--json", type=Path, default=None, help="save raw results here")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat = "1000", 1
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if any(size < SERIES or size % SERIES for size in args.sizes):
        parser.error(f"sizes must be multiples of {SERIES}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


DISCARDED = "discarded"  # outputs set aside during a run, deleted once it is over


def discard(path: Path, folder: Path) -> None:
    """Move ``path`` into ``folder`` under a fresh name (see Tool.make_cold)."""
    if not path.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    path.rename(folder / f"{len(list(folder.iterdir()))}-{path.name}")


@contextmanager
def workdir(given: Path | None) -> Iterator[Path]:
    """The given folder, or a temporary one removed on exit."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="announcer-bench-") as folder:
        yield Path(folder)


def pristine_tree(root: Path, events: int, seed: int, defaults: bool = False) -> Path:
    """The generated tree for ``events`` (made once, reused when complete): at equal
    work, or with ``defaults`` as generated, the settings a new site starts with."""
    tree = root / (f"tree-{events}-seed{seed}" + (f"-{DEFAULTS}" if defaults else ""))
    done = tree / ".generated"
    if not done.exists():
        shutil.rmtree(tree, ignore_errors=True)
        generate(tree, SERIES, events // SERIES, seed)
        if not defaults:
            with (tree / "announcer.yaml").open("a", encoding="utf-8") as site:
                site.write(EQUAL_WORK)
        done.touch()
    return tree


def make_tools(
    root: Path, pristine: Path, events: int, names: tuple[str, ...] = ("announcer", "baseline")
) -> list[Tool]:
    """A fresh copy of the tree for each tool (announcer first: A B A B)."""
    tools = []
    for name in names:
        folder = root / f"run-{events}" / name
        discard(folder, root / DISCARDED)
        folder.mkdir(parents=True)
        shutil.copytree(pristine, folder / "tree", ignore=shutil.ignore_patterns(".generated"))
        tools.append(Tool(name, folder / "tree", folder / "out", folder / "cache",
                          root / DISCARDED))
    return tools


def edited_event(tree: Path, upcoming: bool = False) -> Path:
    """The event file the one-change scenario edits: the first one with a location,
    and with ``upcoming`` the first that starts on or after ``NOW``'s day."""
    for path in sorted(tree.glob("series/*/events/*.yaml")):
        text = path.read_text(encoding="utf-8")
        start = re.search(r"^start: (\d{4}-\d{2}-\d{2})", text, re.MULTILINE)
        if upcoming and (start is None or start[1] < NOW[:10]):
            continue
        if re.search(r"^location: ", text, re.MULTILINE):
            return path
    what = "upcoming event" if upcoming else "event"
    raise RuntimeError(f"no {what} with a location line in {tree}")


def change_one_event(tree: Path, upcoming: bool = False) -> None:
    """Switch the location of one event between two values: always a real change."""
    path = edited_event(tree, upcoming)
    text = path.read_text(encoding="utf-8")
    new = LOCATIONS[1] if f"location: {LOCATIONS[0]}\n" in text else LOCATIONS[0]
    text = re.sub(r"^location: .*$", f"location: {new}", text, count=1, flags=re.MULTILINE)
    path.write_text(text, encoding="utf-8")


def measure_build(tool: Tool, scenario: str, repeat: int, log: Path) -> Record:
    """Prepare ``scenario``, run one build of ``tool`` and time it."""
    if scenario == "cold":
        tool.make_cold()
    elif scenario == "one":
        change_one_event(tool.tree, upcoming=tool.name == DEFAULTS)
    before = snapshot(tool.out)
    os.sync()  # the last build's writes are flushed now, not during this one
    run: Run = run_process(tool.command(), log, tool.env())
    paths = touched(before, snapshot(tool.out))
    return Record(scenario, tool.name, repeat, run.wall, run.cpu, run.max_rss_kib,
                  len(paths), paths[:EXAMPLES])


def measure_floor(tool: Tool) -> float:
    """Seconds to write the output of the cold build just made again, bare
    (:func:`measure.write_floor`): the disk's share of that build, at that hour."""
    target = tool.out.parent / "floor"
    discard(target, tool.discarded)
    os.sync()  # as before every build
    done = subprocess.run([sys.executable, str(HERE / "measure.py"), "floor", str(tool.out),
                           str(target)], check=True, capture_output=True, text=True)
    discard(target, tool.discarded)
    return float(json.loads(done.stdout)["wall"])


def output_summary(tool: Tool) -> dict[str, Any]:
    """Files, bytes and event counts of a finished build."""
    stats = tree_stats(tool.out)
    return {
        "files": stats.files,
        "bytes": stats.bytes,
        "vevents": count_vevents(tool.out / "calendar.ics"),
        "atom_entries": count_entries(tool.out / "feed.atom"),
        "stats": stats,
    }


def progress(text: str) -> None:
    """One line on stderr while the benchmark runs."""
    print(text, file=sys.stderr, flush=True)


def run_size(root: Path, events: int, repeat: int, seed: int) -> SizeResult:
    """Every scenario at one size, A B A B."""
    progress(f"{events:,} events: generating / copying trees")
    tools = make_tools(root, pristine_tree(root, events, seed), events)
    return measure_all(tools, SizeResult(events, SERIES, repeat))


def run_defaults(root: Path, events: int, repeat: int, seed: int) -> SizeResult:
    """Every scenario at one size, announcer alone with the shipped defaults."""
    progress(f"{events:,} events, shipped defaults: generating / copying the tree")
    pristine = pristine_tree(root, events, seed, defaults=True)
    tools = make_tools(root, pristine, events, names=(DEFAULTS,))
    return measure_all(tools, SizeResult(events, SERIES, repeat))


def measure_all(tools: list[Tool], result: SizeResult) -> SizeResult:
    """Each scenario ``result.repeat`` times, the tools taking turns."""
    repeat = result.repeat
    for scenario in SCENARIOS:
        for index in range(repeat):
            for tool in tools:
                log = tool.out.parent / f"{scenario}-{index}.log"
                record = measure_build(tool, scenario, index, log)
                result.records.append(record)
                progress(f"  {scenario:4} {tool.name:9} {index + 1}/{repeat}: "
                         f"{record.wall:.2f} s, {record.max_rss_kib / 1024:.0f} MiB, "
                         f"{record.touched:,} files touched")
                if scenario != "cold" and tool.name != "baseline" and record.examples:
                    progress(f"    e.g. {', '.join(record.examples)}")
                if scenario == "cold" and tool.name != "baseline":
                    result.floors.append(measure_floor(tool))
                    progress(f"    the same tree written bare: {result.floors[-1]:.2f} s")
        if scenario == "cold":
            result.outputs = {tool.name: output_summary(tool) for tool in tools}
    return result


def seconds(value: float) -> str:
    """A duration for the table."""
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def mib(kib: float) -> str:
    """KiB as MiB for the table."""
    return f"{kib / 1024:.0f} MiB"


def size(count: int) -> str:
    """Bytes, exact and in MB."""
    return f"{count:,} ({count / 1e6:.1f} MB)"


def meets(events: int, text: str, ok: bool) -> str:
    """The target, with its verdict at the size the issue names."""
    return f"{text}: {'met' if ok else 'missed'}" if events == TARGET_SIZE else text


def timing_rows(result: SizeResult) -> list[list[str]]:
    """One row per scenario: medians and the median of paired ratios."""
    rows = []
    for scenario in SCENARIOS:
        a, b = result.walls(scenario, "announcer"), result.walls(scenario, "baseline")
        target = TARGETS[scenario]
        verdict = meets(result.events, f"≤ {target:g} s", statistics.median(a) <= target)
        ratio = median_ratio(list(zip(a, b, strict=True)))
        rows.append([LABELS[scenario], seconds(statistics.median(a)),
                     seconds(statistics.median(b)), f"{ratio:.2f}×", verdict])
        if scenario == "cold":
            rows.append([*floor_row(result), "", "", ""])
    return rows


FLOOR_LABEL = "announcer's output tree written bare (the disk's share)"


def floor_row(result: SizeResult) -> list[str]:
    """The median time to write the cold build's output again with bare system calls."""
    return [FLOOR_LABEL, seconds(statistics.median(result.floors))]


def cpu_row(result: SizeResult) -> list[str]:
    """Median user + sys CPU of the cold builds."""
    def cpu(tool: str) -> float:
        return statistics.median(
            r.cpu for r in result.records if r.scenario == "cold" and r.tool == tool)
    a, b = cpu("announcer"), cpu("baseline")
    return ["CPU of cold build (user + sys)", seconds(a), seconds(b), f"{b / a:.2f}×", ""]


def memory_row(result: SizeResult) -> list[str]:
    """The highest peak RSS of each tool over all its builds."""
    a, b = result.peak_kib("announcer"), result.peak_kib("baseline")
    verdict = meets(result.events, f"≤ {TARGET_RSS_MIB} MiB", a <= TARGET_RSS_MIB * 1024)
    return ["peak RSS (highest build)", mib(a), mib(b), f"{b / a:.2f}×", verdict]


def output_rows(result: SizeResult) -> list[list[str]]:
    """Equal work made visible: files, bytes, events in the top calendar and feed."""
    cells = output_cells(result, ("announcer", "baseline"), "rebuild after one change")
    return [[*row, "", ""] for row in cells]


def output_cells(result: SizeResult, tools: tuple[str, ...], one: str) -> list[list[str]]:
    """A label and one cell per tool: files, bytes, events in the top calendar and feed,
    and the files each rebuild touched (``one`` names the one-change rebuild)."""
    outs = [result.outputs[tool] for tool in tools]
    rows = [["output files", *(f"{out['files']:,}" for out in outs)],
            ["output bytes", *(size(out["bytes"]) for out in outs)],
            ["VEVENTs in calendar.ics", *(f"{out['vevents']:,}" for out in outs)],
            ["entries in feed.atom", *(f"{out['atom_entries']:,}" for out in outs)]]
    for scenario, label in (("noop", LABELS["noop"]), ("one", one)):
        touched = [" / ".join(f"{n:,}" for n in result.touched(scenario, tool)) for tool in tools]
        rows.append([f"files touched by {label}", *touched])
    return rows


def table(result: SizeResult) -> str:
    """The Markdown table of one size."""
    head = ["figure", "announcer", "baseline", "baseline / announcer",
            f"target at {TARGET_SIZE:,} events"]
    rows = [*timing_rows(result), memory_row(result), cpu_row(result), *output_rows(result)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def kinds(stats: TreeStats, paths: Iterable[str] | None = None) -> str:
    """Files and bytes per extension, for the notes."""
    return ", ".join(f"{ext} {files:,} ({total / 1e6:.1f} MB)"
                     for ext, (files, total) in stats.by_extension(paths).items())


def differences(result: SizeResult) -> list[str]:
    """Output by kind, and the paths only one tool writes."""
    a: TreeStats = result.outputs["announcer"]["stats"]
    b: TreeStats = result.outputs["baseline"]["stats"]
    lines = [f"- announcer writes {kinds(a)}", f"- baseline writes {kinds(b)}"]
    for name, mine, other in (("announcer", a, b), ("baseline", b, a)):
        only = mine.paths - other.paths
        detail = f": {kinds(mine, only)}" if only else ""
        lines.append(f"- only {name} writes {len(only):,} files{detail}")
    return lines


def check_equal_work(result: SizeResult) -> list[str]:
    """Warnings when the top-level calendar or feed do not carry every event."""
    warnings = []
    for tool, out in result.outputs.items():
        for key, what in (("vevents", "VEVENTs in calendar.ics"), ("atom_entries",
                                                                   "entries in feed.atom")):
            if out[key] != result.events:
                warnings.append(f"- WARNING: {tool} has {out[key]:,} {what}, "
                                f"not {result.events:,}: not equal work")
    return warnings


def check_noop(result: SizeResult, tool: str = "announcer") -> list[str]:
    """A warning for each no-op rebuild of announcer that touched files."""
    return [f"- WARNING: announcer's no-op rebuild touched {r.touched:,} files, "
            f"e.g. {', '.join(r.examples)}"
            for r in result.records
            if r.scenario == "noop" and r.tool == tool and r.touched]


def report_size(result: SizeResult) -> str:
    """Heading, table and notes for one size."""
    per = result.events // result.series
    pairs = "pair" if result.repeat == 1 else "pairs"
    head = (f"### {result.events:,} events ({result.series} series × {per:,}), "
            f"{result.repeat} A B {pairs} per figure")
    notes = ["Times are medians; the ratio is the median of the paired ratios. "
             "Files touched: per build, in run order (new inode or mtime, added or removed).",
             FLOOR_NOTE]
    return "\n".join([head, "", table(result), "", *notes, *differences(result),
                      *check_equal_work(result),
                      *check_noop(result), ""])


FLOOR_NOTE = ("Written bare: right after each cold build, its output tree is written again "
              "into a new folder (same folders, names and bytes; os.makedirs, os.open, "
              "os.write, nothing else). It shows how dear files were on this disk at that "
              "moment, which moves a cold build more than anything in it.")


def defaults_rows(result: SizeResult) -> list[list[str]]:
    """Timings against the targets, memory and output of the shipped-defaults builds."""
    rows = []
    for scenario in SCENARIOS:
        wall = statistics.median(result.walls(scenario, DEFAULTS))
        label = UPCOMING_LABEL if scenario == "one" else LABELS[scenario]
        verdict = "" if scenario == "cold" else meets(  # the cold target is at equal work
            result.events, f"≤ {TARGETS[scenario]:g} s", wall <= TARGETS[scenario])
        rows.append([label, seconds(wall), verdict])
        if scenario == "cold":
            rows.append([*floor_row(result), ""])
    peak = result.peak_kib(DEFAULTS)
    rows.append(["peak RSS (highest build)", mib(peak), meets(
        result.events, f"≤ {TARGET_RSS_MIB} MiB", peak <= TARGET_RSS_MIB * 1024)])
    return rows + [[*row, ""] for row in output_cells(result, (DEFAULTS,), UPCOMING_LABEL)]


def report_defaults(result: SizeResult) -> str:
    """Heading, table and notes for announcer alone with the shipped defaults."""
    builds = "build" if result.repeat == 1 else "builds"
    head = (f"### {result.events:,} events, announcer alone with the shipped defaults, "
            f"{result.repeat} {builds} per figure")
    lines = ["| figure | announcer | target at 10,000 events |", "| --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in defaults_rows(result)]
    notes = ["announcer.yaml as generated: feeds of the newest 50 entries, the combined and "
             "tag calendars from a year back (a series' calendar keeps all its events). The "
             "edit: the location of the first event (by path) that starts on or after the "
             "build's day. Times are medians.", FLOOR_NOTE]
    return "\n".join([head, "", *lines, "", *notes, *check_noop(result, DEFAULTS), ""])


def report_header(info: dict[str, Any], tools: list[Tool], root: Path) -> str:
    """Machine, interpreter and exact commands."""
    memory = info["memory_bytes"]
    lines = ["## announcer build benchmark", "",
             f"- machine: {info['platform']}, {info['cpu_count']} CPUs ({info['cpu_model']}), "
             + (f"{memory / 2**30:.1f} GiB RAM" if memory else "memory unknown"),
             f"- Python {info['python']} ({info['executable']})",
             f"- disk of the work folder: {info['filesystem']}",
             "- announcer.yaml gets `calendar: {past_days: all}` and `feeds: {limit: all}` "
             "(the comparison; the shipped-defaults tables leave it as generated)",
             "- cold: no output folder, cache folder, ledger.json or .announcer/; "
             "no-op: run again; one change: one event's location edited, then run",
             "", "Commands:", "", "```"]
    lines += [" ".join(tool.command()) for tool in tools]
    where = (f"TREE, OUT, CACHE: {root}/run-EVENTS/TOOL/tree, .../out and .../cache, one per "
             "tool; every build runs with ANNOUNCER_CACHE_DIR=CACHE/announcer and "
             "XDG_CACHE_HOME=CACHE.")
    return "\n".join([*lines, "```", "", where, ""])


def report_probe(when: str, seconds: list[float]) -> str:
    """One reading of :func:`measure.cpu_probe`: the host's speed at that moment."""
    return (f"- CPU probe {when} (a fixed Python loop, {len(seconds)} runs): "
            f"{min(seconds):.2f}-{max(seconds):.2f} s, median {statistics.median(seconds):.2f} s")


def to_json(info: dict[str, Any], commands: list[list[str]], results: list[SizeResult],
            defaults: list[SizeResult], probes: dict[str, list[float]]) -> str:
    """Raw results as JSON."""
    return json.dumps({"machine": info, "cpu_probes": probes, "now": NOW, "commands": commands,
                       "sizes": [size_json(result) for result in results],
                       "defaults": [size_json(result) for result in defaults]}, indent=2)


def size_json(result: SizeResult) -> dict[str, Any]:
    """One size's outputs and runs."""
    outputs = {tool: {k: v for k, v in out.items() if k != "stats"}
               for tool, out in result.outputs.items()}
    return {"events": result.events, "series": result.series, "repeat": result.repeat,
            "outputs": outputs, "runs": [asdict(r) for r in result.records],
            "floors": result.floors}


def check_baseline_imports() -> None:
    """Fail early, with the fix, if the baseline's libraries are missing."""
    missing = [name for name, module in BASELINE_NEEDS.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        sys.exit(f"the baseline needs {', '.join(missing)}: "
                 f"{sys.executable} -m pip install {' '.join(missing)}")


def announcer_package() -> Path:
    """The folder of the announcer package the builds import (the editable source)."""
    spec = importlib.util.find_spec("announcer")
    if spec is None or spec.origin is None:
        sys.exit(f"announcer is not installed: {sys.executable} -m pip install -e .")
    return Path(spec.origin).parent


def default_repeat(events: int) -> int:
    """Three pairs below 10,000 events, one from there on (the baseline takes minutes)."""
    return 3 if events < TARGET_SIZE else 1


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    args = parse_args(argv)
    check_baseline_imports()
    compiled(announcer_package())
    results: list[SizeResult] = []
    defaults: list[SizeResult] = []
    sample = [Tool(name, Path("TREE"), Path("OUT"), Path("CACHE"), Path("DISCARDED"))
              for name in ("announcer", "baseline")]
    with workdir(args.workdir) as root:
        info = machine(root)
        probes = {"start": cpu_probe()}
        print(report_header(info, sample, root), report_probe("at the start", probes["start"]),
              "", sep="\n", flush=True)
        try:
            for events in args.sizes:
                repeat = args.repeat or default_repeat(events)
                results.append(run_size(root, events, repeat, args.seed))
                print(report_size(results[-1]), flush=True)
                defaults.append(run_defaults(root, events, max(repeat, 3), args.seed))
                print(report_defaults(defaults[-1]), flush=True)
                probes[f"after {events}"] = cpu_probe()
                print(report_probe(f"after {events:,} events", probes[f"after {events}"]),
                      "", sep="\n", flush=True)
        finally:
            shutil.rmtree(root / DISCARDED, ignore_errors=True)  # after the last build
    if args.json:
        commands = [tool.command() for tool in sample]
        text = to_json(info, commands, results, defaults, probes)
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
