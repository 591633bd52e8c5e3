"""Run every atheris target (fuzz/fuzz_<name>.py) for a time budget and print, per
target, the inputs tried and the crashes found.

    .venv/bin/python fuzz/run.py --seconds 20            # all targets, 20 s each
    .venv/bin/python fuzz/run.py --seconds 60 sod dg13   # some targets

Each target starts from the seeds of fuzz_targets (the virtual chip's files of a
synthetic person, 9303 worked examples) plus the regression inputs kept in
fuzz/crashers/, copied into a fresh corpus folder. libFuzzer stops at the first crash;
the target is then restarted for the rest of its budget (at most --max-restarts
times) so one bug does not hide the next. New crashers land in fuzz/crashers/new/
(input .bin + traceback .txt); after the fix, move the .bin to fuzz/crashers/<target>-*.bin
so tests/robustness/test_robust_crashers.py replays it.

Per-input limits: -timeout (a hang is a crash), -rss_limit_mb (a length field of 2^31
that gets allocated is a crash). Exit status 1 when any target crashed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fuzz_targets  # noqa: E402

UNITS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
PULSE = re.compile(r"^#(\d+)\s", re.MULTILINE)
CRASH = re.compile(r"Uncaught Python exception|ERROR: libFuzzer|==\d+== ERROR")


@dataclass
class Result:
    name: str
    inputs: int = 0
    crashes: int = 0
    seconds: float = 0.0
    runs: int = 0
    notes: list[str] = field(default_factory=list)


def _corpus(name: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(fuzz_targets.TARGETS[name].seeds()):
        (folder / f"seed-{i}").write_bytes(seed)
    for kept in sorted((HERE / "crashers").glob(f"{name}-*.bin")):
        shutil.copy(kept, folder / kept.name)


def _one_run(name: str, corpus: Path, seconds: int, args: argparse.Namespace) -> tuple[int, bool, str]:
    cmd = [sys.executable, str(HERE / f"fuzz_{name}.py"), str(corpus),
           f"-max_total_time={seconds}", f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_mb}",
           f"-max_len={args.max_len}", "-print_final_stats=1", "-artifact_prefix=" + str(args.artifacts) + "/"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=seconds + 120)
    out = proc.stdout + proc.stderr
    units = [int(m) for m in UNITS.findall(out)] or [int(m) for m in PULSE.findall(out)] or [0]
    crashed = proc.returncode != 0 and bool(CRASH.search(out) or "Timeout" in out or "out-of-memory" in out)
    tail = "\n".join(out.strip().splitlines()[-12:]) if crashed else ""
    return max(units), crashed, tail


def run_target(name: str, args: argparse.Namespace) -> Result:
    result = Result(name)
    with tempfile.TemporaryDirectory(prefix=f"idagent-fuzz-{name}-") as tmp:
        corpus = Path(tmp) / "corpus"
        _corpus(name, corpus)
        started = time.monotonic()
        while result.runs <= args.max_restarts:
            left = int(args.seconds - (time.monotonic() - started))
            if left < 1:
                break
            inputs, crashed, tail = _one_run(name, corpus, left, args)
            result.runs += 1
            result.inputs += inputs
            if not crashed:
                break
            result.crashes += 1
            result.notes.append(tail)
        result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help=f"default: all ({', '.join(fuzz_targets.TARGETS)})")
    parser.add_argument("--seconds", type=int, default=20, help="time budget per target")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=1536, help="memory limit of the fuzzing process")
    parser.add_argument("--max-len", type=int, default=8192, help="longest input libFuzzer builds")
    parser.add_argument("--max-restarts", type=int, default=5)
    parser.add_argument("--artifacts", type=Path, default=HERE / "crashers" / "new")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the end of each crash log")
    args = parser.parse_args(argv)
    names = args.targets or list(fuzz_targets.TARGETS)
    unknown = [n for n in names if n not in fuzz_targets.TARGETS]
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}")
    args.artifacts.mkdir(parents=True, exist_ok=True)
    try:
        from importlib.metadata import version

        import atheris  # noqa: F401
        print(f"atheris {version('atheris')}, {args.seconds} s per target")
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 3
    print(f"{'target':<12} {'inputs':>9} {'crashes':>7} {'seconds':>7}  what")
    total = Result("total")
    for name in names:
        res = run_target(name, args)
        total.inputs += res.inputs
        total.crashes += res.crashes
        total.seconds += res.seconds
        print(f"{name:<12} {res.inputs:>9} {res.crashes:>7} {res.seconds:>7.1f}  {fuzz_targets.TARGETS[name].what}",
              flush=True)
        if args.verbose:
            for note in res.notes:
                print("    " + note.replace("\n", "\n    "))
    print(f"{'total':<12} {total.inputs:>9} {total.crashes:>7} {total.seconds:>7.1f}")
    if total.crashes:
        print(f"crashing inputs and tracebacks: {args.artifacts}")
    return 1 if total.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
