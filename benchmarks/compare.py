"""Two revisions of announcer built side by side on the same tree, A B B A.

Usage: python benchmarks/compare.py REV_A REV_B [--events 10000] [--pairs 3]
                                    [--scenarios cold,one,noop] [--workdir DIR]

The machines these figures come from drift by a third within minutes, so a
change is judged by pairs run one right after the other, not by figures taken
apart. Each revision is checked out (a detached git worktree) into the work
folder and runs from its own ``src/`` with its own copy of the tree, output
and cache folders; the scenarios are run.py's (cold build, no-op, one event
changed). Prints each pair and the median of the paired ratios B / A, of wall time
and of CPU time (user + sys, which the disk's moods move less).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from measure import compiled, machine, median_ratio
from run import (
    DISCARDED,
    LABELS,
    SCENARIOS,
    SERIES,
    Record,
    Tool,
    discard,
    measure_build,
    pristine_tree,
    workdir,
)

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Checkout(Tool):
    """run.py's announcer tool, running a revision's own source instead of the installed one."""

    src: Path = REPO / "src"

    def env(self) -> dict[str, str]:
        return {**super().env(), "PYTHONPATH": str(self.src)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs=2, metavar="REV", help="git revisions A and B")
    parser.add_argument("--events", type=int, default=10_000, help="events in the tree")
    parser.add_argument("--pairs", type=int, default=3, help="A B pairs per scenario")
    parser.add_argument("--scenarios", default="cold,one,noop", help="of " + ",".join(SCENARIOS))
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.events < SERIES or args.events % SERIES or args.pairs < 1:
        parser.error(f"--events must be a multiple of {SERIES}, --pairs at least 1")
    return args


@contextmanager
def checked_out(revision: str, folder: Path) -> Iterator[Path]:
    """``revision`` in a detached worktree at ``folder``; its ``src/``."""
    git = ["git", "-C", str(REPO)]
    subprocess.run(
        [*git, "worktree", "add", "--force", "--detach", str(folder), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield folder / "src"
    finally:
        subprocess.run(
            [*git, "worktree", "remove", "--force", str(folder)], check=False, capture_output=True
        )


def sides(root: Path, pristine: Path, events: int, sources: list[Path]) -> list[Checkout]:
    """A copy of the tree, and output and cache folders, per revision."""
    found = []
    for name, src in zip("AB", sources, strict=True):
        folder = root / f"compare-{events}" / name
        discard(folder, root / DISCARDED)
        folder.mkdir(parents=True)
        shutil.copytree(pristine, folder / "tree", ignore=shutil.ignore_patterns(".generated"))
        found.append(
            Checkout(
                "announcer",
                folder / "tree",
                folder / "out",
                folder / "cache",
                root / DISCARDED,
                src,
            )
        )
    return found


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with workdir(args.workdir) as root:
        log = root / "compare.log"
        print("machine: " + ", ".join(f"{k} {v}" for k, v in machine(root).items()))
        with (
            checked_out(args.revisions[0], root / "rev-A") as src_a,
            checked_out(args.revisions[1], root / "rev-B") as src_b,
        ):
            for src in (src_a, src_b):
                compiled(src / "announcer")
            pristine = pristine_tree(root, args.events, args.seed)
            pair = sides(root, pristine, args.events, [src_a, src_b])
            print(f"A = {args.revisions[0]}, B = {args.revisions[1]}, {args.events:,} events")
            for scenario in args.scenarios:
                walls, cpus = [], []
                for number in range(1, args.pairs + 1):
                    if scenario != "cold" and not pair[0].out.exists():
                        for side in pair:
                            measure_build(side, "cold", 0, log)
                    a, b = measured_pair(pair, scenario, number, log)
                    walls.append((a.wall, b.wall))
                    cpus.append((a.cpu, b.cpu))
                    print(
                        f"  {LABELS[scenario]}, pair {number} ({'AB' if number % 2 else 'BA'}): "
                        f"A {a.wall:.2f} s, B {b.wall:.2f} s, B/A {b.wall / a.wall:.2f}; "
                        f"CPU A {a.cpu:.2f} s, B {b.cpu:.2f} s, B/A {b.cpu / a.cpu:.2f}",
                        flush=True,
                    )
                print(
                    f"{LABELS[scenario]}: median of paired ratios B/A "
                    f"{median_ratio(walls):.2f} (CPU {median_ratio(cpus):.2f})"
                )


def measured_pair(
    pair: Sequence[Tool], scenario: str, number: int, log: Path
) -> tuple[Record, Record]:
    """A's build and B's, A first in odd pairs and B first in even ones: a host that
    drifts, or the disk still writing out the build before, then weighs on both alike."""
    first, second = pair if number % 2 else pair[::-1]
    one = measure_build(first, scenario, number, log)
    other = measure_build(second, scenario, number, log)
    return (one, other) if number % 2 else (other, one)


if __name__ == "__main__":
    main()
