#!/usr/bin/env python3
"""Live mode chaos soak: a long stream, several workers in one group, random kills and rebalances.

Not a CTest/CI test (it runs for minutes); run it by hand from the repository root:

    python3 tests/soak/chaos.py --handoffd build/processor/handoffd --source-dir . \
        --seed 1 --guarantee at_least_once [--partitions 16] [--rate 500] [--duration 300] \
        [--max-workers 3] [--keep] [--set kafka.pipeline_threads=1 ...]

Exit status 0 when every check passed; on failure the temp dir with every log, the inputs and a
findings.json is kept (its path is printed). Run it with several seeds and both guarantees.

What it does:
- starts one `handoffd broker` (16 partitions by default) and produces, for `--duration` seconds
  at `--rate` events/s (300 s x 500/s = 150k events, about 2 MB per events partition, well
  within the mock's ~5 MiB), a stream whose content is a function of the seed only (event times
  are the wall clock at production): interleaved synthetic runs (P2/P3, the synthetic workflow
  and refund-review) that fail (classified and unclassified codes, retry_exhausted, tool-call
  write failures, failed outcomes without an incident), make low-confidence, risky or large
  decisions, request planned handoffs, or succeed; repeated events (same event_id);
  bad records that must be dead-lettered (not JSON, not an object, missing run_id, bad
  timestamp, wrong types, missing error.code, an unknown severity); acknowledgements and
  resolutions written by this (external) client to handoff.acks a few seconds after a run
  completes, with and without packet_id; and every few seconds a run whose failure is stamped
  back in time so that its SLA deadline falls 12-40 s after production: it escalates on the
  wall clock, or is acknowledged 6 s before its deadline (no escalation) or acknowledged or
  resolved 8 s after it (escalated, then acknowledged).
- runs 1 to --max-workers `handoffd run` workers (names w0..wN, random kafka.pipeline_threads)
  in one group, and until production ends, every 1-10 s picks at random: kill -9 a worker
  (restarted at once or later), SIGTERM a worker (it must exit 0), start one, start one and
  kill -9 it 0.5-4 s later (while it joins or restores), or SIGTERM and immediately start
  another (scale in and out); with --pause also SIGSTOP/SIGCONT one (a zombie member, see
  --help): rebalances happen while records are produced and while members restore. A worker
  that exits without being told to is a finding.
- at the end stops all but one worker, lets it take every partition and catch up, then, with
  a final phase of runs whose packets are due to escalate 15 s after they open, kills it with
  -9 once they are open and restarts it, and checks:
  * the routing and audit records equal what `handoffd replay --advance-to NOW-3s` gives for
    each partition's input (events and acks merged by event time, as the worker merges them):
    every record present, none extra, equal but for `source`; per topic and packet, the first
    copies in replay's order;
  * every duplicate (same topic and ce_id) is byte-identical to its first copy (key, value and
    headers);
  * the DLQ holds exactly replay's dead letters (same bytes, same handoffd-error reason), each
    pointing (handoffd-source) at the input record with those bytes, duplicates identical;
  * the packets open at the final kill escalate;
  * /metrics of the final worker: every partition assigned, no lag, no delivery failure, no
    truncated restore, no held-records overflow, no active run, open packets = replay's;
  * no worker exited unless told to, every SIGTERM gave exit 0;
  * the broker dropped no head of an input or output partition (the run would prove nothing:
    lower --rate or raise --partitions); a state partition's may go (snapshots cover it).
  The summary line (and findings.json) also counts notable log lines: restores, catch-ups,
  "partitions lost", COMMITFAIL, snapshots, errors.

Timing rules that keep live output equal to replay (docs/live-mode.md, "Determinism"): every
record gets a distinct event time close to the wall clock; acks of a packet come >= 2 s after
the last event of its run; no acknowledgement is produced within 3 s of its packet's deadline
(a producer that fell behind is detected and the run left out of the comparison, and said); no
P1 (its 60 s hold would fire on the wall clock), no run stays active (no stall timer), and the
test ends long before the 900 s P2 deadline of the normal failures.
"""

import argparse
import collections
import datetime
import json
import os
import random
import re
import signal
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kafka_harness as kh  # noqa: E402  (re-execs /usr/bin/python3 if confluent_kafka is missing)
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

TICK_S = 0.1
FIRST_RESPONSE_S = {"P2": 900, "P3": 14400}
FAILURE_CODES = ["missing_input", "duplicate", "conflict", "write_failed", "schema_invalid",
                 "permission_denied", "unsupported", "mystery_error", "timeout", "not_found"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--handoffd", required=True)
    p.add_argument("--source-dir", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once")
    p.add_argument("--partitions", type=int, default=16)
    p.add_argument("--rate", type=int, default=500, help="events per second")
    p.add_argument("--duration", type=int, default=300, help="seconds of production and chaos")
    p.add_argument("--max-workers", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the temp dir even on success")
    p.add_argument("--pause", action="store_true",
                   help="also SIGSTOP a worker for 4-8 s (longer than its 3 s session) and "
                        "SIGCONT it: a zombie member. Expect the documented at_least_once gap "
                        "(docs/live-mode.md, 'No fencing of a member that lost its partitions'), "
                        "and on the embedded broker the same for exactly_once (no KIP-447)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one more --set for every worker (repeatable)")
    return p.parse_args()


def parse_ts(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            d = datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc)
            return int(round(d.timestamp() * 1000))
        except ValueError:
            return None
    return None


def record_ts(value):
    """Event time (ms) of an input record's bytes, or None (not JSON, no usable ts)."""
    try:
        obj = json.loads(value)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    return parse_ts(obj.get("ts"))


# ---------------------------------------------------------------------------------------------
# The stream


class Run:
    def __init__(self, run_id, events, packets):
        self.run_id = run_id
        self.events = events    # dicts without ts
        self.packets = packets  # how many incidents the run opens (packet ids run#1..run#n)


def make_run(rng, run_id):
    """One synthetic run: events (dicts, no ts) and the number of packets it should open."""
    workflow = "refund-review" if rng.random() < 0.2 else "synthetic"
    start = {"type": "run_started", "workflow_id": workflow}
    if workflow == "synthetic":
        start.update(severity=rng.choice(["P2", "P3", "P3"]), objective=f"chaos run {run_id}",
                     owner={"primary": "agent-ops", "backup": "platform-oncall"})
        if rng.random() < 0.5:
            start["rollback_command"] = f"undo {run_id}"
    events = [start]
    steps = rng.randint(1, 4)
    roll = rng.random()
    packets = 0
    failed = False
    for s in range(steps):
        step = f"step-{s}"
        events.append({"type": "step_started", "step": step})
        for _ in range(rng.randint(0, 2)):
            events.append({"type": "tool_call", "step": step, "tool": rng.choice(["search", "sql"]),
                           "status": "ok", "side_effect": "none",
                           "cost_usd": round(rng.uniform(0, 0.01), 4),
                           "tokens": rng.randint(10, 900)})
        if rng.random() < 0.1:
            events.append({"type": "heartbeat", "step": step})
        last = s == steps - 1
        if last and roll < 0.10:
            events.append({"type": "step_failed", "step": step,
                           "error": {"code": rng.choice(FAILURE_CODES),
                                     "message": f"boom {rng.randint(0, 1 << 30)}"}})
            packets, failed = 1, True
        elif last and roll < 0.14:
            for _ in range(4):
                events.append({"type": "step_failed", "step": step, "retryable": True,
                               "error": {"code": "rate_limited", "message": "slow down"}})
            packets, failed = 1, True
        elif last and roll < 0.18:
            events.append({"type": "decision", "step": step, "confidence": 0.4, "action": "ship"})
            packets, failed = 1, True
        elif last and roll < 0.21:
            events.append({"type": "decision", "step": step, "confidence": 0.97,
                           "action": "delete", "risk": "irreversible"})
            packets = 1
        elif last and roll < 0.24 and workflow == "refund-review":
            events.append({"type": "decision", "step": step, "confidence": 0.99,
                           "action": "refund", "amount": 900})
            packets = 1
        elif last and roll < 0.28:
            events.append({"type": "handoff_requested", "step": step, "reason": "needs a human",
                           "handoff_type": rng.choice(["evidence_gap", "business_judgment",
                                                       "risk_authorization"]),
                           "options": [{"label": "go", "risk": "low"},
                                       {"label": "stop", "risk": "high"}],
                           "evidence": {"log": f"s3://logs/{run_id}"}})
            packets = 1
        elif last and roll < 0.31:
            events.append({"type": "tool_call", "step": step, "tool": "writer", "status": "error",
                           "side_effect": "reversible"})
            events.append({"type": "step_failed", "step": step,
                           "error": {"code": "write_failed", "message": "disk"}})
            packets, failed = 1, True
        elif last and roll < 0.34:
            # Two incidents: a failure on an earlier step, then a low-confidence decision.
            events.insert(2, {"type": "step_failed", "step": "step-0",
                              "error": {"code": "conflict", "message": "two truths"}})
            events.append({"type": "decision", "step": step, "confidence": 0.2})
            packets, failed = 2, True
        elif last and roll < 0.36:
            events.append({"type": "step_succeeded", "step": step})
            failed = True  # failure outcome without an incident: unclassified_failure
            packets = 1
        else:
            events.append({"type": "step_succeeded", "step": step})
    events.append({"type": "run_completed", "outcome": "failure" if failed else "success"})
    for i, e in enumerate(events):
        e["event_id"] = f"{run_id}-{i}"
        e["run_id"] = run_id
    return Run(run_id, events, packets)


BAD_KINDS = ["not_json", "not_object", "no_run_id", "bad_ts", "wrong_confidence",
             "no_error_code", "bad_severity"]


def make_bad(n, kind, ts):
    key = f"bad-{n}"
    t = kh.rfc3339(ts)
    if kind == "not_json":
        return key, "{not json %d" % n
    if kind == "not_object":
        return key, "[%d, 2, 3]" % n
    if kind == "no_run_id":
        return key, json.dumps({"event_id": key, "type": "heartbeat", "ts": t})
    if kind == "bad_ts":
        return key, json.dumps({"event_id": key, "run_id": key, "type": "heartbeat",
                                "ts": "yesterday-%d" % n})
    if kind == "wrong_confidence":
        return key, json.dumps({"event_id": key, "run_id": key, "type": "decision", "ts": t,
                                "confidence": "high"})
    if kind == "no_error_code":
        return key, json.dumps({"event_id": key, "run_id": key, "type": "step_failed", "ts": t,
                                "step": "s", "error": {"message": "no code"}})
    return key, json.dumps({"event_id": key, "run_id": key, "type": "run_started", "ts": t,
                            "workflow_id": "synthetic", "severity": "P9"})


class Stream:
    """The records to produce at each tick (0.1 s); content is a function of the seed only."""

    def __init__(self, seed, rate, duration_s):
        self.rng = random.Random(seed)
        self.seed = seed
        self.per_tick = max(1, rate // 10)
        self.end_tick = int(duration_s / TICK_S)
        self.esc_end_tick = self.end_tick - 600  # escalation runs stop 60 s before the end
        self.active = []
        self.run_no = 0
        self.bad_no = 0
        self.esc_no = 0
        self.acks = collections.defaultdict(list)  # tick -> [(kind, run_id, packet_id, check)]
        self.clock = 0  # last event time handed out
        self.unsafe_runs = set()  # runs whose ack landed within 3 s of a deadline (producer late)
        self.deadlines = {}  # run_id -> SLA deadline (ms) of the back-dated runs
        self.counts = collections.Counter()

    def now(self):
        """A distinct event time, >= the wall clock."""
        self.clock = max(self.clock + 1, kh.now_ms())
        return self.clock

    def done(self, tick):
        return tick >= self.end_tick and not self.active and not any(
            t >= tick for t in self.acks)

    def _event(self, e, ts=None):
        e = dict(e)
        e["ts"] = kh.rfc3339(self.now() if ts is None else ts)
        self.counts["events"] += 1
        return (kh.EVENTS, e["run_id"], json.dumps(e))

    def _schedule_acks(self, tick, run):
        if run.packets == 0:
            return
        roll = self.rng.random()
        delay = self.rng.randint(20, 80)
        pid = f"{run.run_id}#1" if self.rng.random() < 0.7 else None
        if roll < 0.4:
            self.acks[tick + delay].append(("handoff_acknowledged", run.run_id, pid, None))
        elif roll < 0.6:
            self.acks[tick + delay].append(("handoff_resolved", run.run_id, pid, None))
        elif roll < 0.8:
            self.acks[tick + delay].append(("handoff_acknowledged", run.run_id, pid, None))
            self.acks[tick + delay + self.rng.randint(10, 40)].append(
                ("handoff_resolved", run.run_id, pid, None))
        # else: never acknowledged (its P2/P3 deadline is far beyond the test)

    def _escalation_run(self, tick, out):
        self.esc_no += 1
        run_id = f"esc-{self.seed}-{self.esc_no}"
        sev = self.rng.choice(["P2", "P3"])
        d_s = self.rng.randint(12, 40)
        events = [
            {"type": "run_started", "workflow_id": "synthetic", "severity": sev,
             "objective": f"escalating run {run_id}",
             "owner": {"primary": "agent-ops", "backup": "platform-oncall"}},
            {"type": "step_started", "step": "s1"},
            {"type": "tool_call", "step": "s1", "tool": "search", "status": "ok",
             "side_effect": "none"},
            {"type": "step_failed", "step": "s1",
             "error": {"code": self.rng.choice(FAILURE_CODES), "message": "late"}},
            {"type": "run_completed", "outcome": "failure"},
        ]
        for i, e in enumerate(events):
            e["event_id"] = f"{run_id}-{i}"
            e["run_id"] = run_id
        for e in events:
            if e["type"] == "step_failed":
                ts = self.now() - FIRST_RESPONSE_S[sev] * 1000 + d_s * 1000
                self.deadlines[run_id] = ts + FIRST_RESPONSE_S[sev] * 1000
                out.append(self._event(e, ts))
            else:
                out.append(self._event(e))
        roll = self.rng.random()
        pid = f"{run_id}#1"
        if roll < 0.2:
            self.acks[tick + (d_s - 6) * 10].append(("handoff_acknowledged", run_id, pid, "before"))
        elif roll < 0.4:
            self.acks[tick + (d_s + 8) * 10].append(("handoff_acknowledged", run_id, pid, "after"))
        elif roll < 0.6:
            self.acks[tick + (d_s + 8) * 10].append(("handoff_resolved", run_id, None, "after"))
        self.counts["escalation_runs"] += 1

    def tick(self, tick):
        """[(topic, key, value)] to produce at this tick, in this order."""
        out = []
        if tick < self.esc_end_tick and tick % 25 == 0:
            self._escalation_run(tick, out)
        n = self.per_tick if tick < self.end_tick else self.per_tick * 4
        for _ in range(n):
            if tick < self.end_tick:
                while len(self.active) < 48:
                    self.run_no += 1
                    r = make_run(self.rng, f"cr-{self.seed}-{self.run_no}")
                    r.pending = list(r.events)
                    self.active.append(r)
            if not self.active:
                break
            run = self.active[self.rng.randrange(len(self.active))]
            e = run.pending.pop(0)
            rec = self._event(e)
            out.append(rec)
            if self.rng.random() < 0.01:  # delivered twice (same bytes)
                out.append(rec)
                self.counts["repeated"] += 1
            if not run.pending:
                self.active.remove(run)
                self.counts["runs"] += 1
                self._schedule_acks(tick, run)
            if tick < self.end_tick and self.rng.random() < 0.003:
                self.bad_no += 1
                kind = self.rng.choice(BAD_KINDS)
                key, value = make_bad(self.bad_no, kind, self.now())
                out.append((kh.EVENTS, key, value))
                self.counts["bad"] += 1
        for kind, run_id, pid, check in self.acks.pop(tick, []):
            ts = self.now()
            if check is not None and abs(ts - self.deadlines[run_id]) < 3000:
                self.unsafe_runs.add(run_id)
            ack = {"type": kind, "run_id": run_id, "by": "chaos-oncall", "ts": kh.rfc3339(ts)}
            if pid is not None:
                ack["packet_id"] = pid
            out.append((kh.ACKS, run_id, json.dumps(ack)))
            self.counts["acks"] += 1
        return out


class ProducerThread(threading.Thread):
    def __init__(self, bootstrap, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 0,
                                  "enable.idempotence": True})
        self.error = None
        self.max_lag_s = 0.0
        self.finished = threading.Event()

    def run(self):
        try:
            t0 = time.time()
            tick = 0
            while not self.stream.done(tick):
                due = t0 + tick * TICK_S
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                self.max_lag_s = max(self.max_lag_s, -delay)
                for topic, key, value in self.stream.tick(tick):
                    while True:
                        try:
                            self.producer.produce(topic, key=key, value=value)
                            break
                        except BufferError:
                            self.producer.poll(0.05)
                self.producer.poll(0)
                tick += 1
            left = self.producer.flush(60)
            assert left == 0, f"{left} records not delivered"
        except Exception as e:  # noqa: BLE001
            self.error = f"{e}\n{traceback.format_exc()}"
        finally:
            self.finished.set()


# ---------------------------------------------------------------------------------------------
# Reading topics to their ends


class Reader:
    """Reads topics from offset 0, every partition; read_to_end() reads up to the high
    watermarks as of the call."""

    def __init__(self, bootstrap, topics):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-reader",
                                  "log_level": 0, "enable.auto.commit": False,
                                  "enable.partition.eof": False, "fetch.wait.max.ms": 10})
        md = self.consumer.list_topics(timeout=10)
        self.parts = [(t, p) for t in topics for p in md.topics[t].partitions]
        self.consumer.assign([TopicPartition(t, p, 0) for t, p in self.parts])
        self.next = {tp: 0 for tp in self.parts}
        self.records = []

    def read_to_end(self, timeout=120):
        high = {}
        for t, p in self.parts:
            _, hi = self.consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10,
                                                        cached=False)
            high[(t, p)] = hi
        deadline = time.time() + timeout
        while any(self.next[tp] < high[tp] for tp in self.parts):
            if time.time() > deadline:
                behind = {tp: (self.next[tp], high[tp]) for tp in self.parts
                          if self.next[tp] < high[tp]}
                raise AssertionError(f"could not read to the end: {list(behind.items())[:5]}")
            for m in self.consumer.consume(5000, timeout=0.2):
                if m.error() is None:
                    self.records.append(kh.Record(m))
                    self.next[(m.topic(), m.partition())] = m.offset() + 1
        return self.records

    def close(self):
        self.consumer.close()


# ---------------------------------------------------------------------------------------------
# Expected outputs


def merged_inputs(records, partitions):
    """Per partition, the input lines in the order the worker merges them: each topic in offset
    order; a record without an event time goes at once, else the earlier head (events on a
    tie). Returns {p: [(topic, partition, offset, line)]}."""
    by = collections.defaultdict(list)
    for r in records:
        if r.topic in (kh.EVENTS, kh.ACKS):
            by[(r.topic, r.partition)].append(r)
    out = {}
    for p in range(partitions):
        ev = sorted(by[(kh.EVENTS, p)], key=lambda r: r.offset)
        ak = sorted(by[(kh.ACKS, p)], key=lambda r: r.offset)
        ets = [record_ts(r.value) for r in ev]
        ats = [record_ts(r.value) for r in ak]
        i = j = 0
        seq = []
        while i < len(ev) or j < len(ak):
            if i < len(ev) and (ets[i] is None or j >= len(ak)):
                side = 0
            elif j < len(ak) and (ats[j] is None or i >= len(ev)):
                side = 1
            else:
                side = 0 if ets[i] <= ats[j] else 1
            if side == 0:
                seq.append(ev[i])
                i += 1
            else:
                seq.append(ak[j])
                j += 1
        out[p] = seq
    return out


def replay_partition(env, seq, advance_to):
    lines = [r.value.decode() for r in seq]
    return env.replay(lines, advance_to=advance_to)


# ---------------------------------------------------------------------------------------------
# Workers and chaos


class Chaos:
    def __init__(self, env, args, rng):
        self.env = env
        self.args = args
        self.rng = rng
        self.workers = {}
        for i in range(args.max_workers):
            lanes = rng.choice([1, 2, 3])
            name = f"w{i}"
            self.workers[name] = env.worker(
                name, guarantee=args.guarantee,
                extra_sets=[f"kafka.pipeline_threads={lanes}"])
        self.stopping = {}  # name -> (sigterm time)
        self.findings = []
        self.actions = collections.Counter()

    def running(self):
        return [n for n, w in self.workers.items()
                if w.proc is not None and w.proc.poll() is None and n not in self.stopping]

    def stopped(self):
        return [n for n, w in self.workers.items()
                if (w.proc is None or w.proc.poll() is not None) and n not in self.stopping]

    def finding(self, what):
        kh.log(f"FINDING: {what}")
        self.findings.append(what)

    def reap(self):
        """Checks exits: SIGTERMed workers must exit 0; nobody else may exit."""
        for name, t0 in list(self.stopping.items()):
            w = self.workers[name]
            rc = w.proc.poll()
            if rc is None:
                if time.time() - t0 > 40:
                    self.finding(f"{name} did not stop within 40 s after SIGTERM; killed")
                    w.kill9()
                    del self.stopping[name]
                continue
            del self.stopping[name]
            took = time.time() - t0
            if rc != 0:
                self.finding(f"{name} exited {rc} after SIGTERM ({took:.1f}s)\n"
                             f"{w.current_log()[-2500:]}")
        for name, w in self.workers.items():
            if name in self.stopping or w.proc is None:
                continue
            rc = w.proc.poll()
            if rc is not None and not getattr(w, "told", False):
                self.finding(f"{name} exited {rc} by itself\n{w.current_log()[-2500:]}")
                w.told = True

    def start(self, name):
        w = self.workers[name]
        w.told = False
        w.start()
        self.actions["start"] += 1
        kh.log(f"start {name} (#{w.starts})")

    def kill9(self, name):
        w = self.workers[name]
        w.told = True
        w.kill9()
        self.actions["kill9"] += 1
        kh.log(f"kill -9 {name}")

    def sigterm(self, name):
        w = self.workers[name]
        w.told = True
        w.proc.send_signal(signal.SIGTERM)
        self.stopping[name] = time.time()
        self.actions["sigterm"] += 1
        kh.log(f"SIGTERM {name}")

    def wait_stopped(self, name, timeout=45):
        deadline = time.time() + timeout
        while name in self.stopping and time.time() < deadline:
            self.reap()
            time.sleep(0.1)

    def step(self):
        running, stopped = self.running(), self.stopped()
        choices = []
        if running:
            choices += [("kill9", 3), ("sigterm", 2)]
        if stopped:
            choices += [("start", 3), ("start_kill", 1)]
        if running and stopped:
            choices += [("swap", 1)]
        if running and self.args.pause:
            choices += [("pause", 2)]
        total = sum(w for _, w in choices)
        x = self.rng.uniform(0, total)
        for action, weight in choices:
            x -= weight
            if x <= 0:
                break
        if action == "kill9":
            name = self.rng.choice(running)
            self.kill9(name)
            if self.rng.random() < 0.5:
                time.sleep(self.rng.uniform(0, 2))
                self.start(name)
        elif action == "sigterm":
            self.sigterm(self.rng.choice(running))
        elif action == "start":
            self.start(self.rng.choice(stopped))
        elif action == "start_kill":
            name = self.rng.choice(stopped)
            self.start(name)
            time.sleep(self.rng.uniform(0.5, 4))
            self.reap()
            if self.workers[name].proc.poll() is None:
                self.kill9(name)
                self.actions["start_kill"] += 1
        elif action == "pause":
            name = self.rng.choice(running)
            w = self.workers[name]
            os.killpg(w.proc.pid, signal.SIGSTOP)
            kh.log(f"SIGSTOP {name}")
            time.sleep(self.rng.uniform(4, 8))
            os.killpg(w.proc.pid, signal.SIGCONT)
            kh.log(f"SIGCONT {name}")
            self.actions["pause"] += 1
        elif action == "swap":
            old = self.rng.choice(running)
            new = self.rng.choice(stopped)
            self.sigterm(old)
            self.start(new)
            self.actions["swap"] += 1
        # Keep the group from staying empty for long.
        if not self.running() and self.rng.random() < 0.8:
            time.sleep(self.rng.uniform(0, 3))
            self.reap()
            cand = self.stopped()
            if cand:
                self.start(self.rng.choice(cand))


def dump(env, inputs, outputs, expected_records):
    """Writes what the broker held (inputs, outputs, the changelog) and replay's records to the
    temp dir: the broker goes with the script."""
    def rec(r):
        return {"topic": r.topic, "partition": r.partition, "offset": r.offset,
                "key": r.key.hex() if r.key is not None else None,
                "value": r.value.hex() if r.value is not None else None, "headers": r.headers}
    state = Reader(env.bootstrap, [kh.STATE])
    state.read_to_end()
    state.close()
    for name, records in (("inputs", inputs), ("outputs", outputs), ("state", state.records)):
        with open(os.path.join(env.tmp, f"{name}.jsonl"), "w") as f:
            for r in records:
                f.write(json.dumps(rec(r)) + "\n")
    with open(os.path.join(env.tmp, "expected.jsonl"), "w") as f:
        for r in expected_records:
            f.write(json.dumps(r) + "\n")
    kh.log(f"inputs, outputs, changelog and replay's records written to {env.tmp}")


def metrics_map(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+?)(\{.*\})?\s+(\S+)$", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def msum(metrics, name, label_filter=""):
    return sum(v for (n, l), v in metrics.items() if n == name and label_filter in l)


def main():
    args = parse_args()
    args.set = list(args.set)
    rng = random.Random(args.seed * 7919 + 1)
    t_start = time.time()
    findings = []
    with kh.Env(args, partitions=args.partitions, name=f"chaos-{args.seed}") as env:
        summary_path = os.path.join(env.tmp, "findings.json")
        chaos = Chaos(env, args, rng)
        stream = Stream(args.seed, args.rate, args.duration)
        # Two workers up before the stream starts, a third soon after.
        chaos.start("w0")
        chaos.start("w1")
        producer = ProducerThread(env.bootstrap, stream)
        producer.start()
        while not producer.finished.is_set():
            time.sleep(rng.uniform(1, 10))
            chaos.reap()
            if producer.finished.is_set():
                break
            chaos.step()
        if producer.error:
            raise AssertionError(f"producer failed: {producer.error}")
        kh.log(f"stream produced: {dict(stream.counts)}; producer at most "
               f"{producer.max_lag_s:.2f}s late; actions {dict(chaos.actions)}")

        # The end: one worker takes every partition.
        chaos.reap()
        for name in chaos.running():
            if name != "w0":
                chaos.sigterm(name)
        for name in list(chaos.stopping):
            chaos.wait_stopped(name)
        final = chaos.workers["w0"]
        if final.proc is None or final.proc.poll() is not None:
            chaos.start("w0")
        chaos.reap()
        deadline = time.time() + 120
        while final.owned_partitions() != set(range(args.partitions)):
            chaos.reap()
            if time.time() > deadline:
                raise AssertionError(f"w0 owns {sorted(final.owned_partitions())} only")
            time.sleep(0.5)
        final.wait_ready(timeout=120)
        kh.log("w0 owns every partition and is ready")

        # Final phase: packets due to escalate 15 s after they open; kill -9 while they are open.
        final_runs = []
        late = []
        for i in range(2 * args.partitions):
            run_id = f"final-{args.seed}-{i}"
            events = kh.run_script(random.Random(i), run_id, fail=True, severity="P3")
            for e in events:
                t = stream.now()
                if e["type"] == "step_failed":
                    t = t - FIRST_RESPONSE_S["P3"] * 1000 + 20000
                e = dict(e, ts=kh.rfc3339(t))
                late.append((run_id, json.dumps(e)))
            final_runs.append(run_id)
        env.produce(kh.EVENTS, late)
        out = Reader(env.bootstrap, kh.ROUTING + [kh.AUDIT, kh.DLQ])

        def opened(records):
            return {r.json()["packet_id"] for r in records if r.topic in kh.ROUTING and
                    r.json()["run_id"].startswith("final-") and r.json()["revision"] == 1}

        deadline = time.time() + 60
        while len(opened(out.read_to_end())) < len(final_runs):
            assert time.time() < deadline, f"final packets: {len(opened(out.records))}"
            time.sleep(0.5)
        open_ids = opened(out.records)
        chaos.kill9("w0")
        kh.log(f"kill -9 w0 with {len(open_ids)} final packets open, due in ~15 s")
        chaos.start("w0")
        final.wait_ready(timeout=120)
        deadline = time.time() + 90
        while True:
            esc = {r.json()["packet_id"] for r in out.read_to_end()
                   if r.topic == "handoff.escalations"}
            if esc >= open_ids:
                break
            if time.time() > deadline:
                findings.append(f"final packets not escalated: {sorted(open_ids - esc)[:10]}")
                break
            time.sleep(0.5)
        kh.log("final packets escalated after the restart")
        time.sleep(4)  # a few ticks and commits past the last timer

        # Expected outputs: replay of each partition's merged input.
        inputs = Reader(env.bootstrap, [kh.EVENTS, kh.ACKS])
        inputs.read_to_end()
        inputs.close()
        advance_to = kh.now_ms() - 3000
        merged = merged_inputs(inputs.records, args.partitions)
        expected_records = []
        for p in range(args.partitions):
            expected_records += replay_partition(env, merged[p], advance_to)
        expected = kh.expected_outputs(expected_records)
        expected_dlq = collections.Counter((r["value_raw"], r["error"]) for r in expected_records
                                           if r["topic"] == kh.DLQ)
        n_inputs = len(inputs.records)

        # Live outputs: wait until the worker produced as many distinct records.
        deadline = time.time() + 120
        while True:
            recs = out.read_to_end()
            distinct = {(r.topic, r.headers.get("ce_id")) for r in recs if r.topic != kh.DLQ}
            if len(distinct) >= len(expected) or time.time() > deadline:
                break
            time.sleep(1)
        time.sleep(3)
        recs = out.read_to_end()
        status, mtext = final.http("/metrics")
        chaos.reap()

        unsafe = stream.unsafe_runs
        if unsafe:
            kh.log(f"{len(unsafe)} runs left out: an ack landed within 3 s of their deadline "
                   f"(producer late): {sorted(unsafe)[:5]}")

        def skip(key, run_id):
            return run_id in unsafe

        # 1. Outputs equal replay.
        live = {}
        for r in recs:
            if r.topic in kh.ROUTING + [kh.AUDIT]:
                live.setdefault((r.topic, r.headers.get("ce_id")), r)
        run_of = {}
        for k, v in expected.items():
            run_of[k] = v["value"].get("run_id") or v["value"]["packet_id"].split("#")[0]
        for k, r in live.items():
            run_of.setdefault(k, r.json().get("run_id") or r.json()["packet_id"].split("#")[0])
        missing = sorted(k for k in set(expected) - set(live) if not skip(k, run_of[k]))
        extra = sorted(k for k in set(live) - set(expected) if not skip(k, run_of[k]))
        differ = []
        for k in set(expected) & set(live):
            if skip(k, run_of[k]):
                continue
            if kh.strip_source(live[k].json()) != kh.strip_source(expected[k]["value"]):
                differ.append(k)
        if missing:
            findings.append(f"{len(missing)} expected records missing, e.g. {missing[:8]}")
        if extra:
            findings.append(f"{len(extra)} unexpected records, e.g. {extra[:8]}")
        if differ:
            differ.sort()
            k = differ[0]
            findings.append(f"{len(differ)} records differ from replay, e.g. {differ[:5]}\n"
                            f"live:   {live[k].value.decode()}\nreplay: "
                            f"{json.dumps(expected[k]['value'])}")

        # 1b. Order: per topic and packet, the first copies come in replay's order (a packet's
        # records share its run_id key, so one partition holds them).
        want_order = collections.defaultdict(list)
        for rec in expected_records:
            if rec["topic"] in kh.ROUTING + [kh.AUDIT]:
                want_order[(rec["topic"], rec["value"]["packet_id"])].append(
                    kh.ce_id(rec["topic"], rec["value"]))
        got_order = collections.defaultdict(list)
        seen = set()
        for r in sorted((r for r in recs if r.topic in kh.ROUTING + [kh.AUDIT]),
                        key=lambda r: (r.topic, r.partition, r.offset)):
            k = (r.topic, r.headers.get("ce_id"))
            if k not in seen:
                seen.add(k)
                got_order[(r.topic, r.json()["packet_id"])].append(k[1])
        misordered = sorted(k for k in want_order if got_order.get(k) != want_order[k] and
                            not skip(k, k[1].split("#")[0]) and
                            set(got_order.get(k, [])) == set(want_order[k]))
        if misordered:
            k = misordered[0]
            findings.append(f"{len(misordered)} packets' records out of replay's order, e.g. {k}: "
                            f"live {got_order[k]} replay {want_order[k]}")

        # 2. Duplicates identical (key, value, headers).
        first = {}
        dups = 0
        dup_diff = []
        for r in recs:
            k = (r.topic, r.headers.get("ce_id"))
            if k in first:
                dups += 1
                f = first[k]
                if (f.value, f.key, f.headers) != (r.value, r.key, r.headers):
                    if not skip(k, run_of.get(k, "")):
                        dup_diff.append((k, f, r))
            else:
                first[k] = r
        if dup_diff:
            k, f, r = dup_diff[0]
            findings.append(f"{len(dup_diff)} duplicates differ from their first copy, e.g. "
                            f"{[d[0] for d in dup_diff[:5]]}\nfirst:  {f.topic}/{f.partition}/"
                            f"{f.offset} {f.headers} {f.value.decode() if f.value else None}\n"
                            f"later:  {r.topic}/{r.partition}/{r.offset} {r.headers} "
                            f"{r.value.decode() if r.value else None}")

        # 3. DLQ: exactly replay's dead letters, each pointing at its input record.
        by_src = {(r.topic, r.partition, r.offset): r for r in inputs.records}
        live_dlq = {}
        for r in recs:
            if r.topic == kh.DLQ:
                live_dlq.setdefault(r.headers.get("handoffd-source"), r)
        got_dlq = collections.Counter(
            ((r.value or b"").decode(), r.headers.get("handoffd-error")) for r in live_dlq.values())
        if got_dlq != expected_dlq:
            findings.append(f"DLQ differs: missing {list((expected_dlq - got_dlq).items())[:5]}, "
                            f"extra {list((got_dlq - expected_dlq).items())[:5]}")
        for src, r in live_dlq.items():
            t, p, o = src.rsplit("/", 2)
            orig = by_src.get((t, int(p), int(o)))
            if orig is None or orig.value != r.value or orig.key != r.key:
                findings.append(f"DLQ record {src} does not match its input record")
                break

        # 4. Metrics of the final worker.
        m = metrics_map(mtext)
        open_expected = set()
        closed = set()
        for rec in expected_records:
            if rec["topic"] in kh.ROUTING:
                open_expected.add(rec["value"]["packet_id"])
            elif rec["topic"] == kh.AUDIT and rec["value"]["action"] in ("resolved", "expired",
                                                                         "closed"):
                closed.add(rec["value"]["packet_id"])
        open_expected -= closed
        checks = {
            "handoffd_assigned_partitions": (msum(m, "handoffd_assigned_partitions"),
                                             args.partitions),
            "handoffd_consumer_lag_records": (msum(m, "handoffd_consumer_lag_records"), 0),
            "handoffd_delivery_failures_total": (msum(m, "handoffd_delivery_failures_total"), 0),
            "handoffd_restores_truncated_total": (msum(m, "handoffd_restores_truncated_total"), 0),
            "held_records limit": (msum(m, "handoffd_limit_hits_total", 'limit="held_records"'), 0),
            "handoffd_active_runs": (msum(m, "handoffd_active_runs"), 0),
            "handoffd_open_packets": (msum(m, "handoffd_open_packets"), len(open_expected)),
        }
        for name, (got, want) in checks.items():
            if got != want:
                findings.append(f"metric {name}: {got} (expected {want})")
        if status != 200:
            findings.append(f"/metrics answered {status}")

        # 6. The mock keeps ~5 MiB per partition: a topic whose head it dropped makes the
        # comparison meaningless (inputs, outputs) or exercises snapshots (the changelog).
        lows = Reader(env.bootstrap, [kh.EVENTS, kh.ACKS, kh.STATE] + kh.OUTPUTS)
        dropped = collections.Counter()
        state_ends = []
        for t, p in lows.parts:
            lo, hi = lows.consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10,
                                                         cached=False)
            if lo > 0:
                dropped[t] += 1
            if t == kh.STATE:
                state_ends.append(hi)
        lows.close()
        for t in [kh.EVENTS, kh.ACKS] + kh.OUTPUTS:
            if dropped[t]:
                findings.append(f"invalid run: the broker dropped the head of {dropped[t]} "
                                f"partition(s) of {t} (over its ~5 MiB); use more partitions or "
                                f"a lower --rate")

        # 5. Logs: errors and notable lines of every worker.
        notable = collections.Counter()
        for w in chaos.workers.values():
            if not os.path.exists(w.log_path):
                continue
            for line in w.log_text().splitlines():
                for pat in ("level=error", "commit failed", "delivery failed",
                            "changelog head missing", "changelog head dropped behind a snapshot",
                            "changelog snapshot", "partitions lost", "state too large",
                            "commits keep failing", "caught up", "partition restored",
                            "COMMITFAIL"):
                    if pat in line:
                        notable[pat] += 1
        findings = chaos.findings + findings
        summary = {
            "seed": args.seed, "guarantee": args.guarantee, "partitions": args.partitions,
            "stream": dict(stream.counts), "input_records": n_inputs,
            "expected_outputs": len(expected), "live_records": len(recs), "duplicates": dups,
            "dlq": sum(expected_dlq.values()), "actions": dict(chaos.actions),
            "starts": {n: w.starts for n, w in chaos.workers.items()},
            "unsafe_runs": sorted(unsafe), "log_lines": dict(notable),
            "producer_max_lag_s": round(producer.max_lag_s, 2),
            "open_packets": len(open_expected), "findings": findings,
            "expected_by_topic": dict(collections.Counter(t for t, _ in expected)),
            "state_partitions_head_dropped": dropped[kh.STATE],
            "state_records_max": max(state_ends) if state_ends else 0,
            "seconds": round(time.time() - t_start),
        }
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=2)
        kh.log("summary: " + json.dumps({k: v for k, v in summary.items() if k != "findings"}))
        out.close()
        if findings or args.keep:
            dump(env, inputs.records, recs, expected_records)
        if findings:
            for f in findings:
                kh.log(f"FAIL: {f}")
            raise AssertionError(f"{len(findings)} findings; see {summary_path}")
        kh.log(f"PASS: {len(expected)} outputs equal replay, {dups} duplicates all identical, "
               f"{sum(expected_dlq.values())} dead letters, in {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        kh.log(f"FAIL: {e}")
        kh._kill_all()
        sys.exit(1)
