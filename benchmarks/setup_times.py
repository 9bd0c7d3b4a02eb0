"""Wall time of README's two set-up commands in a fresh clone, and README's line of them.

    python benchmarks/setup_times.py                  # both commands, one after the other
    python benchmarks/setup_times.py --only tests     # just the test command
    python benchmarks/setup_times.py --write          # and rewrite README's times line

Clones this repository's committed HEAD into a temporary folder, runs each command of
README's set-up block there as a user would (``bash -c``), and prints its wall time and
exit status. The machine's cores and their load are printed with it: the times only
mean something on idle cores. ``--write`` rewrites the measured commands' parts of the
line of README.md that starts with ``TIMES_LINE_START`` (a failed command is not written).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMES_LINE_START = "Expected wall time on"
COMMANDS = {"default": r"^\./setup\.sh && \.venv/bin/snakemake", "tests": r"^\./setup\.sh --test"}


def readme_commands() -> dict[str, str]:
    """The set-up commands of README's first bash block, comments stripped, by kind."""
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S)
    if block is None:
        raise SystemExit(f"{README}: no ```bash block with the set-up commands")
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    found = {}
    for kind, pattern in COMMANDS.items():
        matches = [line for line in lines if re.match(pattern, line)]
        if len(matches) != 1:
            raise SystemExit(f"{README}: expected one {kind} command matching {pattern!r}")
        found[kind] = matches[0]
    return found


def timed(command: str, where: Path) -> tuple[int, float]:
    """Exit status and wall seconds of ``command`` run in ``where``."""
    started = time.perf_counter()
    print(f"$ {command}   (in {where})", flush=True)
    status = subprocess.run(["bash", "-c", command], cwd=where).returncode
    return status, time.perf_counter() - started


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMMANDS), action="append")
    parser.add_argument("--write", action="store_true", help="rewrite README's times line")
    parser.add_argument(
        "--keep", type=Path, help="clone into KEEP/<command> and keep it (default: removed)"
    )
    args = parser.parse_args()
    commands = readme_commands()
    print(f"{os.cpu_count()} cores")
    results = {}
    for kind in args.only or list(COMMANDS):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix=f"trainmap-{kind}-") as folder:
            clone = (args.keep or Path(folder)) / kind
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            status, seconds = timed(commands[kind], clone)
        print(
            f"{kind}: exit {status}, {minutes(seconds)}, load {load:.1f} at its start", flush=True
        )
        results[kind] = (status, seconds, load)
    if args.write:
        if any(status for status, _, _ in results.values()):
            sys.exit("a command failed: README not rewritten")
        write_times(results)


def write_times(results: dict[str, tuple[int, float, float]]) -> None:
    """Rewrite the measured commands' parts of README's times line, keeping the others'."""
    text = README.read_text()
    found = re.search(rf"^{TIMES_LINE_START}.*$", text, re.M)
    if found is None:
        sys.exit(f"{README}: no line starting with {TIMES_LINE_START!r} to rewrite")
    line = found.group(0)
    for kind, (_, seconds, load) in results.items():
        part = f"{kind} command {minutes(seconds)} (load {load:.1f} at its start)"
        old = rf"{kind} command \d+ min \d+ s \(load [\d.]+ at its start\)"
        line, count = re.subn(old, part, line)
        if not count:
            sys.exit(f"{README}: the times line has no '{kind} command ...' part")
    README.write_text(text[: found.start()] + line + text[found.end() :])
    print(f"README.md: {line}")


if __name__ == "__main__":
    main()
