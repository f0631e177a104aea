"""Benchmark `swarmlite stack config` on hostile and large compose files: time and peak memory.

Each case runs `swarmlite stack config -c <file>` (the CLI's own entry point, output to
/dev/null) in a fresh Python process, so that its peak RSS is its own, several times. It
reports the median time of the command alone (the child imports the CLI first, then
times the call), the largest peak RSS of the child (ru_maxrss), how much of it the command
added over the imported CLI, and how the command ended:

- `alias-bomb`: 9 levels of 9 aliases (9^9 values once expanded): refused (issue 15 asks
  for under 1 s and under 100 MB; Docker refuses it in 0.05 s);
- `nested-10000`: 10,000 nested flow lists: refused;
- `nested-10000-block`: 10,000 nested block lists (`- - - ... x`): refused;
- `scalar-5mb`: one 5 MB environment value: loaded and printed (issue 15: under 1 s);
- `services-5mb`: about 5 MB of ordinary services (image, ports, environment, deploy):
  loaded and printed; many small values, so the worst case for a 5 MB file;
- `baseline`: a two-service file: the cost of starting Python and the CLI.

Prints a table, then one JSON line `{case: {bytes, seconds, peak_mb, added_mb, exit,
first_line}}`.
Needs nothing but this checkout (no daemon, no Docker).

    python scripts/bench/compose_load.py [--runs 3] [--keep-dir]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def alias_bomb() -> str:
    lines = [
        "services:",
        "  web: {image: nginx}",
        'x-a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for level in range(1, 10):
        lines.append(f"x-a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def nested_flow(levels: int) -> str:
    return "services:\n  web: {image: nginx}\nx-deep: " + "[" * levels + "]" * levels + "\n"


def nested_block(levels: int) -> str:
    return "services:\n  web: {image: nginx}\nx-deep:\n  " + "- " * levels + "x\n"


def big_scalar(size: int) -> str:
    return "services:\n  web:\n    image: nginx\n    environment:\n      BIG: " + "a" * size + "\n"


def many_services(size: int) -> str:
    parts = ["services:\n"]
    total, i = 0, 0
    while total < size:
        block = (
            f"  svc{i}:\n    image: registry.example.com/team/app{i}:1.{i}\n"
            f'    ports: ["{10000 + i % 50000}:80"]\n'
            f"    environment:\n      NAME: svc{i}\n      LEVEL: info\n      INDEX: '{i}'\n"
            "    deploy:\n      replicas: 2\n      resources: {limits: {memory: 128M}}\n"
        )
        parts.append(block)
        total += len(block)
        i += 1
    return "".join(parts)


CASES = {
    "baseline": lambda: "services:\n  web: {image: nginx}\n  db: {image: postgres}\n",
    "alias-bomb": alias_bomb,
    "nested-10000": lambda: nested_flow(10_000),
    "nested-10000-block": lambda: nested_block(10_000),
    "scalar-5mb": lambda: big_scalar(5_000_000),
    "services-5mb": lambda: many_services(5_000_000),
}

# Run in the child: the CLI as a user runs it, timed alone; its figures on stderr.
_CHILD = """
import resource, sys, time
from swarmlite.cli.main import main
import swarmlite.compose  # imported by the command itself; not part of its time
sys.stdout = open("/dev/null", "w")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    main(["stack", "config", "-c", sys.argv[1]])
except SystemExit as exc:
    code = exc.code
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.stderr.write(f"\\nFIGURES={seconds} {peak} {before}\\n")
sys.exit(code)
"""


def run_case(path: Path) -> tuple[float, float, float, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        cwd=_ROOT,
        env={**os.environ, "PYTHONPATH": str(_ROOT)},
        check=False,
    )
    seconds, peak_kb, before_kb = 0.0, 0, 0
    for line in done.stderr.splitlines():
        if line.startswith("FIGURES="):
            text, peak, before = line.removeprefix("FIGURES=").split()
            seconds, peak_kb, before_kb = float(text), int(peak), int(before)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    first = errors[0] if errors else "(printed the stack)"
    return seconds, peak_kb / 1024, (peak_kb - before_kb) / 1024, done.returncode, first[:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median time)")
    parser.add_argument("--keep-dir", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="swarmlite-compose-bench-"))
    results: dict[str, dict[str, object]] = {}
    try:
        print(
            f"{'case':<20} {'bytes':>9} {'seconds':>8} {'peak MB':>8} {'added MB':>8} exit  "
            "what it said"
        )
        for name, make in CASES.items():
            path = workdir / f"{name}.yml"
            path.write_text(make())
            runs = [run_case(path) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            added = max(r[2] for r in runs)
            code, first = runs[-1][3], runs[-1][4].replace(str(workdir) + "/", "")
            size = path.stat().st_size
            print(
                f"{name:<20} {size:>9} {seconds:>8.3f} {peak:>8.1f} {added:>8.1f} {code:>4}  "
                f"{first[:90]}"
            )
            results[name] = {
                "bytes": size,
                "seconds": round(seconds, 4),
                "peak_mb": round(peak, 1),
                "added_mb": round(added, 1),
                "exit": code,
                "first_line": first,
            }
        print(json.dumps(results, sort_keys=True))
    finally:
        if args.keep_dir:
            print(f"files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
