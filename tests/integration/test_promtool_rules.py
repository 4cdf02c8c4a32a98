"""Checks metrics/rules/*.yml with promtool and runs their unit tests (metrics/tests/*.yml).

`promtool check rules` validates syntax and PromQL; `promtool test rules` replays the input
series in metrics/tests/ and compares recording-rule values and firing alerts (MTTA from the
histogram, exception rate per workflow, each alert firing on a series built to trigger it and
silent on one that should not). promtool comes from Debian's prometheus package.
"""

import argparse
import glob
import os
import subprocess
import sys

PROMTOOL = "/usr/bin/promtool"


def run(argv, cwd):
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    print(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}", flush=True)
    return proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handoffd", help="unused; ctest passes it to every integration test")
    parser.add_argument("--source-dir", required=True, help="repository root")
    args = parser.parse_args()
    if not os.path.exists(PROMTOOL):
        print(f"FAIL: {PROMTOOL} not installed (scripts/install-deps installs prometheus)")
        return 1
    root = os.path.abspath(args.source_dir)
    rules = sorted(glob.glob(os.path.join(root, "metrics", "rules", "*.yml")))
    tests = sorted(glob.glob(os.path.join(root, "metrics", "tests", "*.yml")))
    assert rules, "no rule files in metrics/rules"
    assert tests, "no promtool tests in metrics/tests"
    failures = 0
    failures += run([PROMTOOL, "check", "rules"] + rules, root) != 0
    failures += run([PROMTOOL, "test", "rules"] + tests, root) != 0
    if failures:
        print("FAIL")
        return 1
    print(f"PASS: {len(rules)} rule files checked, {len(tests)} test files passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
