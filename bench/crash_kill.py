"""Benchmark: kill the sender with SIGKILL hundreds of times; print the crash figures.

Runs tests/dunning/test_crash_kill.py (a real sender process against a local aiosmtpd
server, killed at seeded random moments) with many more rounds than `make test` does, on
the test database pytest-django makes from DATABASE_URL, and prints its figures: rounds,
kills, notices, messages delivered, notices left uncertain, and messages delivered twice
(which must be 0; the run fails otherwise).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/collections \\
        .venv/bin/python bench/crash_kill.py --rounds 300 --seed 15 [--command run_dunning]
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--command",
        default="send_due",
        choices=["send_due", "run_dunning"],
        help="what each killed round runs (run_dunning also plans: slower rounds)",
    )
    args = parser.parse_args()
    env = {
        **os.environ,
        "CRASH_KILL_ROUNDS": str(args.rounds),
        "CRASH_KILL_SEED": str(args.seed),
        "CRASH_KILL_COMMAND": args.command,
        "ALLOW_INSECURE_SECRET_KEY": os.environ.get("ALLOW_INSECURE_SECRET_KEY", "true"),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-s",
            "tests/dunning/test_crash_kill.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    figures = re.search(r"crash-kill figures: (\{.*\})", done.stdout)
    print(f"rounds {args.rounds}, seed {args.seed}, {args.command}, {seconds:.0f} s")
    print(figures.group(1) if figures else "no figures (the test did not get that far)")
    verdict = "PASS" if done.returncode == 0 else "FAIL"
    print(f"exactly once through {args.rounds} kills: {verdict}")
    if done.returncode:
        print(done.stdout[-4000:])
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
