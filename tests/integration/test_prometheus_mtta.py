"""A real Prometheus scrapes a real handoffd worker and computes MTTA and exception rates.

Starts the embedded broker (`handoffd broker`), one `handoffd run` worker and Debian's
/usr/bin/prometheus on loopback (1 s scrape and rule interval, the rules in metrics/rules/), then
produces a scripted stream in three waves:
  - ledger-close (P1): 4 runs, 3 fail a write; the 3 P1 packets are acknowledged 60, 120 and 240 s
    after detection -> MTTA(P1) = 140 s; exception rate 3/4.
  - refund-review (P2): 4 runs, 1 fails (missing input, never acknowledged, past its deadline ->
    an SLA breach), 1 asks for a decision acknowledged after 600 s -> MTTA(P2) = 600 s; exception
    rate 1/4.
  - one run of a workflow outside the catalog (reported as "_other") and one line that is not JSON.
Then checks through Prometheus's HTTP API: MTTA(P1) = 140 s (sum/count and the recording rule),
MTTA(P2) = 600 s, exception rates per workflow (recording rule and raw), an SLA breach, and that
every PromQL expression of metrics/dashboards/handoffd.json parses and returns a series once its
variables are substituted. Also runs `promtool check metrics` on a scrape of the worker.

Event times are a few minutes before the wall clock, because a caught-up worker lets the
watermark follow the wall clock: the P1 deadlines (detected + 300 s) are still ahead when the acks
arrive, the unacknowledged P2 deadline is already behind.

--plot FILE also draws MTTA by severity and exception rate (metrics/plot_from_prometheus.py).
"""

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_harness as kh  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"

CATALOG = """\
# Catalog of test_prometheus_mtta.py: complete entries, so packets page/notify at once.
workflows:
  ledger-close:
    severity: P1
    objective: "Close the month's ledger"
    owner: {primary: finance-ops, backup: finance-lead}
    rollback_command: "ledgerctl revert --run-id <run_id>"
    blast_radius: {users: 200, jobs: 1}
  refund-review:
    severity: P2
    objective: "Prepare refund decision material"
    owner: {primary: customer-success-lead, backup: support-oncall}
    rollback_command: "refundctl void-drafts --run-id <run_id>"
    blast_radius: {users: 10, jobs: 1}
    amount_threshold: 500
    # Its runs start up to 20 minutes before the wall clock (the P2 deadline is 900 s): without
    # this, a caught-up worker would report them stalled as soon as they arrive.
    stall_timeout_s: 3600
"""

# Dashboard variables as Grafana would fill them for a query at the end of the scenario.
DASHBOARD_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "1s",
    "$__range": "5m",
    "${datasource}": "prometheus",
    "$datasource": "prometheus",
    "$workflow": ".*",
    "${workflow}": ".*",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario(base_ms):
    """(events, acks) per wave: lists of dicts, times in seconds after base_ms (now - 1200 s)."""
    waves = [[], [], []]
    acks = [[], [], []]

    def run(wave, run_id, workflow, t0, events):
        evs = [{"type": "run_started", "workflow_id": workflow}] + events
        for i, e in enumerate(evs):
            e.setdefault("ts_off", i)
            e["ts"] = kh.rfc3339(base_ms + (t0 + e.pop("ts_off")) * 1000)
            e["event_id"] = f"{run_id}-{i}"
            e["run_id"] = run_id
        waves[wave].extend(evs)

    def fail(step, code, at):
        return [{"type": "step_started", "step": step, "ts_off": at - 2},
                {"type": "step_failed", "step": step, "error": {"code": code, "message": "boom"},
                 "ts_off": at}]

    def ack(wave, run_id, at_s):
        acks[wave].append({"type": "handoff_acknowledged", "run_id": run_id, "by": "oncall",
                           "ts": kh.rfc3339(base_ms + at_s * 1000)})

    # ledger-close: P1 failures detected at 950 s (250 s before the wall clock, so the P1
    # deadline, +300 s, is still ahead), acked 60 / 120 / 240 s later.
    for wave, (n, delay) in enumerate([(1, 60), (2, 120), (3, 240)]):
        t0 = 940
        run(wave, f"ledger-close-{n}", "ledger-close", t0, fail("post_entries", "write_failed", 10))
        ack(wave, f"ledger-close-{n}", t0 + 10 + delay)
    run(2, "ledger-close-4", "ledger-close", 900,
        [{"type": "step_started", "step": "post_entries"},
         {"type": "step_succeeded", "step": "post_entries"},
         {"type": "run_completed", "outcome": "success"}])
    # refund-review: one exception never acked (detected at 0 s: deadline 900 s, breached), one
    # planned decision acked after 600 s, two clean runs.
    run(1, "refund-review-1", "refund-review", 0, fail("collect_evidence", "missing_input", 5))
    run(1, "refund-review-2", "refund-review", 400,
        [{"type": "decision", "step": "decide_refund", "confidence": 0.95, "amount": 900,
          "ts_off": 5}])
    ack(1, "refund-review-2", 405 + 600)
    for n in (3, 4):
        run(2, f"refund-review-{n}", "refund-review", 950 + n,
            [{"type": "run_completed", "outcome": "success"}])
    run(2, "adhoc-1", "adhoc-agent", 960, [{"type": "heartbeat"}])
    return waves, acks


class Prometheus:
    def __init__(self, tmp, target_port, rules_dir):
        self.port = free_port()
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rules_dir}/*.yml
scrape_configs:
  - job_name: handoffd
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
""")
        logf = open(os.path.join(tmp, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp}/tsdb",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        kh._processes.append(self.proc)
        self.log_path = os.path.join(tmp, "prometheus.log")
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited:\n" + open(self.log_path).read()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus not ready:\n" + open(self.log_path).read()[-3000:])

    def query(self, expr):
        """Instant query; returns the result list. Raises with Prometheus's error on a bad query."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"query failed: {expr}\n{e.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]["result"]

    def values(self, expr):
        """{frozenset(labels without __name__): float} of an instant query."""
        out = {}
        for s in self.query(expr):
            labels = {k: v for k, v in s["metric"].items() if k != "__name__"}
            out[frozenset(labels.items())] = float(s["value"][1])
        return out

    def value(self, expr, **labels):
        for key, v in self.values(expr).items():
            if all((k, v2) in key for k, v2 in labels.items()):
                return v
        return None

    def wait_value(self, expr, expected, timeout=30, tol=1e-6, **labels):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.value(expr, **labels)
            if got is not None and abs(got - expected) <= tol * max(1, abs(expected)):
                return got
            time.sleep(0.5)
        raise AssertionError(f"{expr} {labels}: expected {expected}, got {got}")


def check_metrics(worker):
    """promtool check metrics (naming, units, help) on a scrape of the live worker."""
    status, text = worker.http("/metrics")
    assert status == 200, status
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True)
    assert lint.returncode == 0, f"promtool check metrics:\n{lint.stdout}{lint.stderr}"
    kh.log(f"promtool check metrics: ok ({len(text.splitlines())} lines)")


def dashboard_exprs(path):
    with open(path) as f:
        dash = json.load(f)
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def substitute(expr):
    for var, value in DASHBOARD_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handoffd", required=True, help="path to the handoffd binary")
    parser.add_argument("--source-dir", required=True, help="repository root")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--plot", metavar="PNG", help="also plot MTTA and exception rate here")
    return parser.parse_args()


def main():
    args = parse_args()
    for tool in (PROMETHEUS, PROMTOOL):
        if not os.path.exists(tool):
            print(f"FAIL: {tool} not installed (scripts/install-deps installs prometheus)")
            return 1
    plot_out = os.path.abspath(args.plot) if args.plot else None
    t_start = time.time()
    source = os.path.abspath(args.source_dir)
    with kh.Env(args, partitions=2, name="prometheus") as env:
        env.config = os.path.join(env.tmp, "catalog.yaml")
        with open(env.config, "w") as f:
            f.write(CATALOG)
        worker = env.worker("w1").start()
        worker.wait_ready()
        port = worker.metrics_port()

        check_metrics(worker)

        prom = Prometheus(env.tmp, port, os.path.join(source, "metrics", "rules"))
        prom.wait_ready()
        # Two scrapes with the zero series before any event, so rate() sees every increment.
        deadline = time.time() + 20
        while len(prom.query('handoffd_build_info[5s]')[:1]) == 0 or \
                len(prom.query('handoffd_build_info[5s]')[0]["values"]) < 2:
            assert time.time() < deadline, "prometheus never scraped handoffd"
            time.sleep(0.3)
        kh.log(f"prometheus at {prom.url} scraping 127.0.0.1:{port}")

        base_ms = kh.now_ms() - 1200 * 1000
        waves, acks = scenario(base_ms)
        for i, (events, wave_acks) in enumerate(zip(waves, acks)):
            lines = [(e["run_id"], json.dumps(e)) for e in events]
            if i == 2:
                lines.append(("broken", "{not json"))
            env.produce(kh.EVENTS, lines)
            time.sleep(1.5)  # the packets exist before their acks arrive
            env.produce(kh.ACKS, [(a["run_id"], json.dumps(a)) for a in wave_acks])
            time.sleep(3 if plot_out else 1)
        kh.log("scenario produced")

        # MTTA(P1) from the histogram: sum / count, and the recording rule over rates.
        prom.wait_value('sum(handoffd_time_to_ack_seconds_count{severity="P1"})', 3)
        got = prom.wait_value('sum by (severity) (handoffd_time_to_ack_seconds_sum) / '
                              'sum by (severity) (handoffd_time_to_ack_seconds_count)', 140,
                              severity="P1")
        kh.log(f"MTTA(P1) sum/count = {got}")
        prom.wait_value('handoffd:mtta_seconds:rate1h', 140, severity="P1")
        prom.wait_value('handoffd:mtta_seconds:rate1h', 600, severity="P2")
        kh.log("MTTA(P1) = 140 s, MTTA(P2) = 600 s via the recording rule")

        # Exception rate per workflow: raw counters and the recording rule.
        for workflow, rate in (("ledger-close", 0.75), ("refund-review", 0.25)):
            prom.wait_value(f'sum(handoffd_exceptions_total{{workflow="{workflow}"}}) / '
                            f'sum(handoffd_runs_started_total{{workflow="{workflow}"}})', rate)
            prom.wait_value('handoffd:exception_rate:ratio_rate1h', rate, workflow=workflow)
        prom.wait_value('handoffd:exception_rate_by_class:ratio_rate1h', 0.75,
                        workflow="ledger-close", failure_class="downstream_write_failure")
        prom.wait_value('handoffd:exception_rate:ratio_rate1h', 0, workflow="_other")
        kh.log("exception rate: ledger-close 0.75, refund-review 0.25, _other 0")

        # The unacknowledged P2 exception passed its deadline: one level-2 breach.
        prom.wait_value('sum(handoffd_sla_breaches_total{workflow="refund-review",level="2"})', 1)
        prom.wait_value('sum(handoffd_events_invalid_total{reason="invalid_json"})', 1)
        assert prom.value('handoffd_runs_started_total', workflow="adhoc-agent") is None
        # Open packets add up over the worker's two partitions: 3 acknowledged P1 packets (open
        # until they expire), the escalated P2 exception and the acknowledged P2 decision.
        prom.wait_value('handoffd_open_packets', 3, severity="P1")
        prom.wait_value('handoffd_open_packets', 2, severity="P2")
        prom.wait_value('handoffd_runs_started_total', 1, workflow="_other")

        check_metrics(worker)  # again, with the scenario's series

        # Every dashboard expression parses and returns at least one series.
        empty = []
        exprs = list(dashboard_exprs(os.path.join(source, "metrics", "dashboards",
                                                  "handoffd.json")))
        for title, expr in exprs:
            result = prom.query(substitute(expr))
            if not result:
                empty.append(f"{title}: {expr}")
        assert not empty, "dashboard expressions without a series:\n" + "\n".join(empty)
        kh.log(f"{len(exprs)} dashboard expressions return series")

        # The MTTA panel reads 140 s for P1 too.
        mtta_expr = next(e for t, e in exprs if t == "MTTA by severity vs SLA band")
        got = prom.value(substitute(mtta_expr), severity="P1")
        assert got is not None and math.isclose(got, 140, rel_tol=1e-9), got

        if plot_out:
            time.sleep(3)
            subprocess.run([sys.executable, os.path.join(source, "metrics",
                                                         "plot_from_prometheus.py"),
                            "--prometheus", prom.url, "--minutes", "2", "--out", plot_out],
                           check=True)
            kh.log(f"plot written to {plot_out}")
    kh.log(f"PASS in {time.time() - t_start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
