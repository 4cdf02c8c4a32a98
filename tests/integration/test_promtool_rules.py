"""Checks metrics/rules/*.yml with promtool and runs their unit tests (metrics/tests/*.yml).

`promtool check rules` validates syntax and PromQL; `promtool test rules` replays the input
series in metrics/tests/ and compares recording-rule values and firing alerts (MTTA from the
histogram, exception rate per workflow, each alert firing on a series built to trigger it and
silent on one that should not); `promtool check config` validates the scrape job shipped in
deploy/prometheus-scrape.yaml. promtool comes from Debian's prometheus package.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

PROMTOOL = "/usr/bin/promtool"


def run(argv, cwd):
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    print(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}", flush=True)
    return proc.returncode


def check_scrape_config(root):
    """`promtool check config` on a minimal prometheus.yml made of deploy/prometheus-scrape.yaml
    and the rule files. Debian's Prometheus is built without Kubernetes discovery, so when
    promtool does not know kubernetes_sd_configs the check runs again with a static target in
    its place (everything else, relabelling included, is still checked)."""
    with open(os.path.join(root, "deploy", "prometheus-scrape.yaml")) as f:
        scrape = yaml.safe_load(f)
    jobs = scrape["scrape_configs"]
    if [j["job_name"] for j in jobs] != ["handoffd"]:
        print("FAIL: deploy/prometheus-scrape.yaml must hold one job named handoffd "
              "(the rules select up{job=\"handoffd\"})")
        return 1
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(os.path.join(root, "metrics", "rules"), os.path.join(d, "rules"))
        path = os.path.join(d, "prometheus.yml")

        def check(config):
            with open(path, "w") as f:
                yaml.safe_dump(config, f)
            proc = subprocess.run([PROMTOOL, "check", "config", path], capture_output=True,
                                  text=True)
            print(f"$ promtool check config prometheus.yml\n{proc.stdout}{proc.stderr}", flush=True)
            return proc

        config = {"global": {"scrape_interval": "15s"}, "rule_files": ["rules/*.yml"],
                  "scrape_configs": jobs}
        proc = check(config)
        if proc.returncode != 0 and "kubernetes_sd_configs not found" in proc.stderr:
            print("note: this promtool has no Kubernetes discovery; checking with a static target")
            for job in jobs:
                del job["kubernetes_sd_configs"]
                job["static_configs"] = [{"targets": ["127.0.0.1:9464"]}]
            proc = check(config)
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
    failures += check_scrape_config(root) != 0
    if failures:
        print("FAIL")
        return 1
    print(f"PASS: {len(rules)} rule files checked, {len(tests)} test files passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
