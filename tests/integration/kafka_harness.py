"""Shared helpers for the live-mode integration tests (tests/integration/test_live_*.py).

Each test file starts its own `handoffd broker` (the embedded broker, on loopback) with a
bootstrap file in a temporary directory, runs `handoffd run` workers as subprocesses with the
test catalog and `--set` overrides, and talks Kafka to them with confluent_kafka (a real,
external client). Every process started here is killed at exit, also when a test fails or the
file is interrupted. Nothing here depends on files outside the repository.
"""

import argparse
import atexit
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
except ImportError:
    # Debian's python3-confluent-kafka lives in the system interpreter; a python3 earlier on PATH
    # (pyenv, venv) may not have it.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

EVENTS = "agent.events"
ACKS = "handoff.acks"
DLQ = "agent.events.dlq"
STATE = "handoffd.state"
ROUTING = [
    "handoff.page",
    "handoff.owner-queue",
    "handoff.tickets",
    "handoff.decisions",
    "handoff.pending",
    "handoff.escalations",
]
AUDIT = "handoff.audit"
OUTPUTS = ROUTING + [AUDIT, DLQ]

_processes = []


def _kill_all():
    for proc in _processes:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


atexit.register(_kill_all)


def _on_signal(signum, _frame):
    _kill_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--handoffd", required=True, help="path to the handoffd binary")
    parser.add_argument("--source-dir", required=True, help="repository root")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--guarantee", choices=["at_least_once", "exactly_once"],
                        help="override the test's processing guarantee")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="one more --set for every worker (repeatable), e.g. "
                             "kafka.pipeline_threads=1")
    return parser.parse_args()


def is_ack(obj):
    return obj.get("type") in ("handoff_acknowledged", "handoff_resolved")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def now_ms():
    return int(time.time() * 1000)


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


class Record:
    """One consumed record: topic, partition, offset, key, value (bytes) and headers (dict)."""

    def __init__(self, msg):
        self.topic = msg.topic()
        self.partition = msg.partition()
        self.offset = msg.offset()
        self.key = msg.key()
        self.value = msg.value()
        self.headers = {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])}

    def json(self):
        return json.loads(self.value)

    def __repr__(self):
        return f"Record({self.topic}/{self.partition}/{self.offset} {self.headers.get('ce_id')})"


class Worker:
    """A `handoffd run` subprocess; stdout+stderr go to a log file in the env's temp dir."""

    def __init__(self, env, name, sets):
        self.env = env
        self.name = name
        self.log_path = os.path.join(env.tmp, f"{name}.log")
        self.sets = sets
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        argv = [self.env.handoffd, "run", "--config", self.env.config, "--instance", self.name]
        for s in self.sets:
            argv += ["--set", s]
        logf = open(self.log_path, "a")
        logf.write(f"=== start {self.starts}\n")
        logf.flush()
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        logf.close()
        _processes.append(self.proc)
        return self

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def current_log(self):
        return self.log_text().rsplit(f"=== start {self.starts}\n", 1)[-1]

    def metrics_port(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(r'msg="metrics listening".* port=(\d+)', self.current_log())
            if m:
                return int(m.group(1))
            self.check_alive()
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: no metrics port in log")

    def http(self, path):
        url = f"http://127.0.0.1:{self.metrics_port()}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_ready(self, timeout=40):
        """Until /readyz says 200 (joined the group, assigned partitions restored)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            try:
                status, _ = self.http("/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: not ready after {timeout}s\n{self.current_log()[-3000:]}")

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.proc.returncode}\n{self.current_log()[-3000:]}")

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout=20):
        """SIGTERM; returns (exit code, seconds it took)."""
        t0 = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"{self.name} did not stop within {timeout}s after SIGTERM")
        return rc, time.time() - t0

    def owned_partitions(self):
        """Partitions this worker owns now, from its assignment/revocation log lines."""
        owned = set()
        for line in self.current_log().splitlines():
            m = re.search(r'msg="partitions (assigned|revoked|lost)" partitions=(\S*)', line)
            if not m:
                continue
            parts = {int(p) for p in m.group(2).strip('"').split(",") if p}
            owned = owned | parts if m.group(1) == "assigned" else owned - parts
        return owned


class Env:
    """A broker plus helpers; use as a context manager so everything stops at the end."""

    def __init__(self, args, partitions=4, name="live", start_broker=True):
        """start_broker=False: no `handoffd broker`; call use_broker() with an address later."""
        self.handoffd = os.path.abspath(args.handoffd)
        self.source_dir = os.path.abspath(args.source_dir)
        self.keep = args.keep
        self.worker_sets = list(getattr(args, "set", []) or [])
        self.tmp = tempfile.mkdtemp(prefix=f"handoffd-{name}-")
        self.config = os.path.join(self.source_dir, "tests", "data", "test-catalog.yaml")
        self.partitions = partitions
        self.bootstrap = None
        if start_broker:
            self._start_broker(partitions)

    def _start_broker(self, partitions):
        bootstrap_file = os.path.join(self.tmp, "bootstrap")
        logf = open(os.path.join(self.tmp, "broker.log"), "a")
        self.broker = subprocess.Popen(
            [self.handoffd, "broker", "--partitions", str(partitions), "--bootstrap-file",
             bootstrap_file], stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        _processes.append(self.broker)
        deadline = time.time() + 20
        while not os.path.exists(bootstrap_file):
            if self.broker.poll() is not None or time.time() > deadline:
                raise AssertionError("handoffd broker did not start: " +
                                     open(os.path.join(self.tmp, "broker.log")).read())
            time.sleep(0.05)
        with open(bootstrap_file) as f:
            self.use_broker(f.read().strip())
        log(f"broker at {self.bootstrap}, {partitions} partitions, logs in {self.tmp}")

    def use_broker(self, bootstrap):
        """Talks to the broker at `bootstrap` from now on (produce, collector, worker)."""
        self.bootstrap = bootstrap
        self._producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "log_level": 0,
                                   "enable.idempotence": True})

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        _kill_all()
        if exc_type is None and not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"logs kept in {self.tmp}")
        return False

    def worker(self, name, guarantee="at_least_once", extra_sets=(), group_timeouts=True):
        """group_timeouts=False: the worker's own defaults for the embedded broker (a user who
        sets nothing), instead of the tests' shorter session.timeout.ms."""
        sets = [
            f"kafka.bootstrap_servers={self.bootstrap}",
            f"kafka.processing_guarantee={guarantee}",
            "kafka.group_id=handoffd-test",
            "metrics.listen=127.0.0.1:0",
        ]
        if group_timeouts:
            # A killed member leaves the group after this; the mock's rebalance waits that long.
            sets += ["kafka.properties.session.timeout.ms=3000",
                     "kafka.properties.heartbeat.interval.ms=500"]
        sets += list(extra_sets) + self.worker_sets
        return Worker(self, name, sets)

    def produce(self, topic, records):
        """records: iterable of (key, value); value str/bytes, or dict (JSON-encoded)."""
        n = 0
        for key, value in records:
            if isinstance(value, dict):
                value = json.dumps(value)
            while True:
                try:
                    self._producer.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    self._producer.poll(0.05)
            n += 1
            if n % 1000 == 0:
                self._producer.poll(0)
        remaining = self._producer.flush(30)
        assert remaining == 0, f"{remaining} records not delivered"
        return n

    def produce_lines(self, lines):
        """JSON lines of the replay format: acks go to handoff.acks, the rest to agent.events."""
        events, acks = [], []
        for line in lines:
            obj = json.loads(line)
            (acks if is_ack(obj) else events).append(
                (obj["run_id"], line))
        self.produce(EVENTS, events)
        self.produce(ACKS, acks)

    def collector(self, topics):
        return Collector(self.bootstrap, topics)

    def replay(self, lines, extra_sets=(), advance_to=None):
        """`handoffd replay` of the lines; returns the output records as dicts."""
        argv = [self.handoffd, "replay", "--config", self.config]
        for s in extra_sets:
            argv += ["--set", s]
        if advance_to is not None:
            argv += ["--advance-to", str(advance_to)]
        argv.append("-")
        out = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True,
                             check=True)
        return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]


def inputs_by_partition(env, acks_last=True):
    """The input as the workers saw it per partition: {p: [events in offset order, then acks]}.
    Valid as replay input when every ack was produced after that partition's events."""
    c = Collector(env.bootstrap, [EVENTS, ACKS])
    c.poll(2)
    c.close()
    out = {}
    for topic in (EVENTS, ACKS):
        for r in sorted((r for r in c.records if r.topic == topic),
                        key=lambda r: (r.partition, r.offset)):
            out.setdefault(r.partition, []).append(r.value.decode())
    return out


_FAILURE_CODES = ["missing_input", "duplicate_entity", "conflict", "write_failed", "schema_invalid",
                  "permission_denied", "unsupported", "mystery_error"]


def run_script(rng, run_id, fail=None, severity=None):
    """The events (dicts without ts) of one run outside the catalog, severity P2 or P3 (no P1:
    its hold timer would fire on the wall clock). fail: None (random), True or False."""
    sev = severity or rng.choice(["P2", "P3", "P3"])
    events = [{"type": "run_started", "workflow_id": "synthetic", "severity": sev,
               "objective": f"synthetic run {run_id}",
               "owner": {"primary": "agent-ops", "backup": "platform-oncall"}}]
    steps = rng.randint(1, 3)
    roll = rng.random() if fail is None else (0.0 if fail else 1.0)
    failed = False
    for s in range(steps):
        step = f"step-{s}"
        events.append({"type": "step_started", "step": step})
        events.append({"type": "tool_call", "step": step, "tool": "search", "status": "ok",
                       "side_effect": "none", "cost_usd": 0.001})
        if s == steps - 1 and roll < 0.15:
            events.append({"type": "step_failed", "step": step,
                           "error": {"code": rng.choice(_FAILURE_CODES), "message": "boom"}})
            failed = True
        elif s == steps - 1 and roll < 0.20:
            events.append({"type": "decision", "step": step, "confidence": 0.4, "action": "ship"})
            failed = True
        elif s == steps - 1 and roll < 0.25:
            events.append({"type": "handoff_requested", "step": step, "reason": "needs a human",
                           "handoff_type": "evidence_gap"})
            failed = True
        else:
            events.append({"type": "step_succeeded", "step": step})
    events.append({"type": "run_completed", "outcome": "failure" if failed else "success"})
    for i, e in enumerate(events):
        e["event_id"] = f"{run_id}-{i}"
        e["run_id"] = run_id
    return events


def timed(events, start_ms, gap_ms=1):
    """(key, json) pairs of event dicts, with event times from start_ms."""
    out = []
    for i, e in enumerate(events):
        e = dict(e)
        e["ts"] = rfc3339(start_ms + i * gap_ms)
        out.append((e["run_id"], json.dumps(e)))
    return out


def synthetic_events(n, seed, start_ms, gap_ms=1, prefix="run", concurrency=32):
    """n events of interleaved runs (about a quarter open a packet) as (key, json) pairs, event
    times from start_ms in steps of gap_ms. Deterministic for a seed."""
    rng = random.Random(seed)
    active, out, run_no, t = [], [], 0, start_ms
    while len(out) < n:
        while len(active) < concurrency:
            run_no += 1
            active.append(run_script(rng, f"{prefix}-{seed}-{run_no}"))
        script = active[rng.randrange(len(active))]
        event = script.pop(0)
        if not script:
            active.remove(script)
        event["ts"] = rfc3339(t)
        t += gap_ms
        out.append((event["run_id"], json.dumps(event)))
    return out


def replay_by_partition(env, extra_sets=(), advance_to=None):
    """`handoffd replay` of each partition's input; the union of the output records."""
    records = []
    for p, lines in sorted(inputs_by_partition(env).items()):
        records += env.replay(lines, extra_sets, advance_to)
    return records


class Collector:
    """Reads topics from the beginning (all partitions, no group) and keeps every record."""

    def __init__(self, bootstrap, topics):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-collector", "log_level": 0,
                                  "enable.auto.commit": False, "enable.partition.eof": False})
        md = self.consumer.list_topics(timeout=10)
        assignment = []
        for t in topics:
            for p in md.topics[t].partitions:
                assignment.append(TopicPartition(t, p, 0))
        self.consumer.assign(assignment)
        self.records = []

    def poll(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            msgs = self.consumer.consume(1000, timeout=0.1)
            for m in msgs:
                if m.error() is None:
                    self.records.append(Record(m))
        return self.records

    def wait_for(self, predicate, timeout, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.poll(0.3)
            if predicate(self.records):
                return self.records
        seen = "\n  ".join(f"{r.topic} {r.headers.get('ce_id')}" for r in self.records[-30:])
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                             f"{len(self.records)} records seen, the last ones:\n  {seen}")

    def close(self):
        self.consumer.close()


def strip_source(value):
    """A packet without `source`: live records name the real partition/offset, replay 0/line."""
    value = dict(value)
    value.pop("source", None)
    return value


def ce_id(topic, value):
    """The CloudEvents id the worker puts on a packet or audit record (docs/live-mode.md)."""
    if topic == AUDIT:
        return f"audit/{value['packet_id']}/{value['revision']}/{value['action']}"
    return f"{value['packet_id']}/{value['revision']}"


def expected_outputs(replay_records):
    """Replay's routing and audit records keyed by (topic, ce_id), as the worker must emit them."""
    return {(r["topic"], ce_id(r["topic"], r["value"])): r
            for r in replay_records if r["topic"] in ROUTING + [AUDIT]}


def assert_outputs_equal_replay(expected, records):
    """Every expected record is present live, nothing else is, and each equals replay's (all
    but `source`). Returns the live records by key."""
    live = {}
    for r in records:
        live.setdefault((r.topic, r.headers["ce_id"]), r)
    missing = set(expected) - set(live)
    extra = set(live) - set(expected)
    assert not missing, f"{len(missing)} missing, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected, e.g. {sorted(extra)[:5]}"
    for k, rec in expected.items():
        assert strip_source(live[k].json()) == strip_source(rec["value"]), (k, live[k].value)
    return live


def packet_records(records):
    """Records on routing topics, as (topic, packet dict, record)."""
    return [(r.topic, r.json(), r) for r in records if r.topic in ROUTING]


def check_cloudevents(record, group_id="handoffd-test"):
    """Asserts the CloudEvents binary-mode headers of an output record."""
    h = record.headers
    assert h.get("ce_specversion") == "1.0", h
    assert h.get("ce_source") == f"handoffd/{group_id}", h
    assert h.get("ce_id"), h
    assert h.get("ce_type", "").startswith("dev.handoffd."), h
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", h.get("ce_time", "")), h
    if record.topic in ROUTING:
        value = record.json()
        assert h["ce_id"] == f"{value['packet_id']}/{value['revision']}", (h, value)
        assert h["ce_type"] == "dev.handoffd.packet.v1", h
        assert h["content-type"] == "application/json", h
        assert h["ce_time"] == value["emitted_at"], (h, value)


def check_duplicates_identical(records):
    """Every record seen twice (same topic and ce_id) is byte-identical to its first copy.
    Returns the number of duplicates."""
    first = {}
    dups = 0
    for r in records:
        if r.topic not in ROUTING + [AUDIT]:
            continue
        k = (r.topic, r.headers.get("ce_id"))
        if k in first:
            dups += 1
            assert first[k].value == r.value, f"duplicate {k} differs:\n{first[k].value}\n{r.value}"
            assert first[k].key == r.key, k
        else:
            first[k] = r
    return dups


def run_test(main):
    """Runs main(args) and reports; exit status 0 only when it returns without an assertion."""
    args = parse_args()
    t0 = time.time()
    try:
        main(args)
    except AssertionError as e:
        log(f"FAIL: {e}")
        _kill_all()
        sys.exit(1)
    log(f"PASS in {time.time() - t0:.1f}s")
