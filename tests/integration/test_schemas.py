"""The JSON Schemas in topics/ against the meta-schema, the sample inputs and handoffd's output.

1. Each topics/*.schema.json is a valid JSON Schema (draft 2020-12 meta-schema).
2. Every line of tests/data/*.jsonl that `handoffd replay` accepts validates against the agent
   event or ack schema, and every line it dead-letters (except "oversized", which a schema cannot
   express in bytes) fails it: schema and decoder agree on what is valid input.
3. Every packet and audit record `handoffd replay --config tests/data/test-catalog.yaml` writes
   for the samples and for a larger synthetic stream (every failure class, planned handoffs,
   holds, acks, resolves, escalations and expiries via --advance-to) validates against the
   packet/audit schema, with its keys in the order the schema lists them (contract section 5).
"""

import argparse
import glob
import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import jsonschema

ROUTING = {"handoff.page", "handoff.owner-queue", "handoff.tickets", "handoff.decisions",
           "handoff.pending", "handoff.escalations"}
AUDIT = "handoff.audit"
DLQ = "agent.events.dlq"


def load_schema(root, name):
    with open(os.path.join(root, "topics", name)) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def replay(handoffd, config, lines, advance_to=None):
    argv = [handoffd, "replay", "--config", config]
    if advance_to:
        argv += ["--advance-to", advance_to]
    argv.append("-")
    out = subprocess.run(argv, input="".join(l + "\n" for l in lines), capture_output=True,
                         text=True, check=True)
    return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]


def errors(validator, obj):
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(obj)]


def key_order_error(schema_props, obj):
    keys = list(obj)
    expected = [k for k in schema_props if k in obj]
    return None if keys == expected else f"keys {keys} not in schema order {expected}"


def synthetic_stream(seed=7, runs=800):
    """A deterministic stream over the test catalog (refund-review P2, ledger-close P1) and
    workflows outside it, touching every detection rule; acks and resolves for some packets."""
    rng = random.Random(seed)
    t = datetime(2026, 6, 1, tzinfo=timezone.utc)
    lines = []

    def ts(dt):
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"

    for n in range(runs):
        run_id = f"syn-{n}"
        wf = rng.choice(["refund-review", "ledger-close", "adhoc", "nightly-report"])
        t += timedelta(seconds=rng.randint(1, 20))
        clock = [t]
        evs = []

        def ev(type_, **fields):
            clock[0] += timedelta(seconds=rng.randint(1, 30))
            e = {"event_id": f"{run_id}-{len(evs)}", "run_id": run_id, "type": type_,
                 "ts": ts(clock[0])}
            e.update(fields)
            evs.append(e)

        started = {"workflow_id": wf}
        if rng.random() < 0.3:
            started["severity"] = rng.choice(["P1", "P2", "P3"])
        if rng.random() < 0.3:
            started["owner"] = {"primary": "alice"}
        if rng.random() < 0.2:
            started["attrs"] = {"ticket": f"T-{n}", "tags": ["a", "b"]}
        if rng.random() < 0.9:
            ev("run_started", objective=f"objective {n}", **started)
        step = "step-a"
        ev("step_started", step=step)
        kind = rng.choice(["ok", "fail", "retry", "tool_error", "low_conf", "risk", "amount",
                           "request", "budget", "stall", "fail_completed"])
        if kind == "ok":
            ev("tool_call", step=step, tool="search", status="ok", side_effect="none",
               cost_usd=0.01, tokens=100, duration_ms=20)
            ev("step_succeeded", step=step)
            ev("run_completed", outcome="success")
        elif kind == "fail":
            code = rng.choice(["missing_input", "duplicate", "conflict", "write_failed",
                               "schema_invalid", "forbidden", "unsupported", "weird_error"])
            extra = {}
            if rng.random() < 0.3:
                extra = {"blast_radius": {"users": rng.choice([5, 5000])},
                         "rollback_command": "undo", "recommended_action": "look"}
            ev("step_succeeded", step=step)
            ev("step_failed", step="step-b", error={"code": code, "message": "it broke"}, **extra)
        elif kind == "retry":
            for _ in range(5):
                ev("step_failed", step=step, error={"code": "timeout"}, retryable=True)
        elif kind == "tool_error":
            ev("tool_call", step=step, tool="erp.write", status="error",
               side_effect=rng.choice(["reversible", "irreversible", "external"]))
        elif kind == "low_conf":
            ev("decision", step=step, confidence=0.3, action="ship", risk="irreversible")
        elif kind == "risk":
            ev("decision", step=step, confidence=0.99, action="wire money", risk="external")
        elif kind == "amount":
            ev("decision", step=step, confidence=0.99, action="refund", amount=900)
        elif kind == "request":
            ev("handoff_requested", step=step, reason="needs a human",
               handoff_type=rng.choice(["business_judgment", "risk_authorization",
                                        "evidence_gap", None]),
               options=[{"label": "yes", "risk": "low"}, {"label": "no", "risk": "none"}],
               evidence={"doc": "workspace/doc.md"}, owner_role="lead",
               next_action_after_decision="continue")
        elif kind == "budget":
            for _ in range(3):
                ev("tool_call", step=step, tool="llm", status="ok", side_effect="none",
                   cost_usd=1.5)
        elif kind == "stall":
            ev("heartbeat", step=step)
        elif kind == "fail_completed":
            ev("run_completed", outcome="failure")
        lines += [json.dumps(e) for e in evs]
        r = rng.random()
        if r < 0.5:
            ack = {"type": "handoff_acknowledged", "run_id": run_id, "by": "oncall",
                   "ts": ts(clock[0] + timedelta(seconds=rng.randint(10, 2000)))}
            if rng.random() < 0.3:
                ack["packet_id"] = f"{run_id}#1"
            lines.append(json.dumps(ack))
        elif r < 0.6:
            lines.append(json.dumps({"type": "handoff_resolved", "run_id": run_id,
                                     "ts": ts(clock[0] + timedelta(seconds=600))}))
    # A few bad lines: they must reach the DLQ and fail the schemas.
    lines += ['{"run_id": "x", "type": "heartbeat", "ts": 1}',
              '{"event_id": "e", "run_id": "x", "type": "decision", "ts": "2026-06-01T00:00:00Z",'
              ' "confidence": 2}',
              '[1, 2]', 'not json']
    # Past the P1 and P2 ttl (1 h, 4 h) of the last packets: expiries and closes happen.
    return lines, ts(t + timedelta(hours=5))


def edge_lines():
    """Values at the edges of the input schema, each where the decoder and the schema must agree
    (checked like the samples), inside runs whose packets must still validate."""
    head = '{"event_id":"%s","run_id":"%s","type":"%s","ts":"2026-07-01T00:00:%02dZ"'
    lines = []

    def run(run_id, *events):
        for n, (type_, fields) in enumerate(events):
            line = head % (f"{run_id}-{n}", run_id, type_, n)
            lines.append(line + ("," + fields if fields else "") + "}")

    failure = ("step_failed", '"step":"s","error":{"code":"weird_error"}')
    started = ("run_started", '"workflow_id":"adhoc"')
    # A negative cost must not reach a packet's run total (packet schema: minimum 0).
    run("edge-cost", started, ("tool_call", '"tool":"llm","cost_usd":-5.5'),
        ("heartbeat", '"cost_usd":-0.5'), ("tool_call", '"tool":"llm","cost_usd":0.25'), failure)
    # Valid JSON numbers outside the 64-bit range: values, never invalid_json.
    big = "99999999999999999999"
    run("edge-big", started, ("decision", f'"confidence":0.99,"amount":{big}'),
        ("tool_call", f'"tool":"llm","tokens":{big}'),
        ("tool_call", '"tool":"llm","duration_ms":-9223372036854775809'),
        ("heartbeat", '"blast_radius":{"users":9223372036854775808}'),
        ("heartbeat", '"blast_radius":{"users":9223372036854775807}'),
        ("heartbeat", f'"cost_usd":{big}'), ("heartbeat", '"cost_usd":1e400'),
        ("decision", '"confidence":0.99,"amount":-1e400'),
        ("heartbeat", f'"unknown":{big},"attrs":{{"n":-{big},"m":1e400}}'), failure)
    lines += ['{"event_id":"b1","run_id":"edge-big","type":"heartbeat","ts":%s}' % ts
              for ts in (big, "-" + big, "1e400", "253402300800000", "-62167219200001")]
    # JSON Schema counts 12.0 as an integer: so does the decoder; 12.5 is no integer.
    run("edge-int", started, ("tool_call", '"tool":"llm","tokens":5.0,"duration_ms":1e3'),
        ("heartbeat", '"blast_radius":{"users":12.0,"jobs":-0.0}'),
        ("heartbeat", '"blast_radius":{"users":12.5}'),
        ("tool_call", '"tool":"llm","tokens":9223372036854775807.0'), failure)
    lines += ['{"event_id":"i%d","run_id":"edge-int","type":"heartbeat","ts":%s}' % (n, ts)
              for n, ts in enumerate(("1782864000000.0", "1.782864001e12", "1782864000000.5"))]
    # options [{label, risk}] and evidence {name: path} reach the decision's owner as sent.
    request = '"step":"s","reason":"sign-off","handoff_type":"business_judgment",'
    run("edge-shape", started, ("handoff_requested", request + '"options":[1]'),
        ("handoff_requested", request + '"options":[{"label":"a"},{"label":7}]'),
        ("handoff_requested", request + '"evidence":{"a":1}'),
        ("handoff_requested", request + '"evidence":{"a":"p","b":null}'),
        ("handoff_requested", request + '"options":[{"label":"ok","risk":null,"x":[1]},{}],'
                                        '"evidence":{"log":"s3://b/l.txt"}'))
    # RFC 3339 section 5.6 allows a space for the T; the decoder and both schemas take it.
    lines += ['{"event_id":"t1","run_id":"edge-int","type":"heartbeat",'
              '"ts":"2026-07-01 00:01:00Z"}',
              '{"event_id":"t2","run_id":"edge-int","type":"heartbeat",'
              '"ts":"2026-07-01t00:01:01.5+02:00"}',
              '{"event_id":"t3","run_id":"edge-int","type":"heartbeat",'
              '"ts":"2026-07-01_00:01:02Z"}',
              '{"type":"handoff_acknowledged","run_id":"edge-int","ts":"2026-07-01 00:01:03Z"}',
              '{"type":"handoff_resolved","run_id":"edge-int","ts":99999999999999999999}']
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handoffd", required=True)
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    root = os.path.abspath(args.source_dir)
    config = os.path.join(root, "tests", "data", "test-catalog.yaml")

    event_v = load_schema(root, "agent-event.schema.json")
    ack_v = load_schema(root, "ack.schema.json")
    packet_v = load_schema(root, "packet.schema.json")
    audit_v = load_schema(root, "audit.schema.json")
    print("schemas: valid against the draft 2020-12 meta-schema")
    failures = []

    def check_inputs(name, lines, outputs):
        dead = {r["value_raw"]: r["error"] for r in outputs if r["topic"] == DLQ}
        checked = 0
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            validator = ack_v if isinstance(obj, dict) and obj.get("type") in (
                "handoff_acknowledged", "handoff_resolved") else event_v
            errs = errors(validator, obj) if obj is not None else ["not JSON"]
            if line in dead:
                if not errs and dead[line] != "oversized":
                    failures.append(f"{name}:{i + 1}: dead-lettered ({dead[line]}) but the "
                                    f"schema accepts it")
            elif errs:
                failures.append(f"{name}:{i + 1}: accepted by handoffd, schema says {errs[:3]}")
            checked += 1
        return checked

    def check_outputs(name, outputs):
        counts = {"packets": 0, "audit": 0}
        for r in outputs:
            if r["topic"] in ROUTING:
                v, props, kind = packet_v, packet_v.schema["properties"], "packets"
            elif r["topic"] == AUDIT:
                v, props, kind = audit_v, audit_v.schema["properties"], "audit"
            else:
                continue
            counts[kind] += 1
            errs = errors(v, r["value"])
            order = key_order_error(props, r["value"])
            if order:
                errs.append(order)
            if r["key"] != r["value"].get("run_id", r["key"]):
                errs.append(f"key {r['key']} is not the packet's run_id")
            if errs:
                failures.append(f"{name}: {r['topic']} {r['value'].get('packet_id')}: {errs[:3]}")
        return counts

    for path in sorted(glob.glob(os.path.join(root, "tests", "data", "*.jsonl"))):
        with open(path) as f:
            lines = f.read().splitlines()
        outputs = replay(args.handoffd, config, lines)
        name = os.path.relpath(path, root)
        n = check_inputs(name, lines, outputs)
        c = check_outputs(name, outputs)
        print(f"{name}: {n} input lines, {c['packets']} packets, {c['audit']} audit records")

    lines = edge_lines()
    outputs = replay(args.handoffd, config, lines)
    n = check_inputs("edge", lines, outputs)
    c = check_outputs("edge", outputs)
    print(f"edge: {n} input lines, {c['packets']} packets, {c['audit']} audit records")
    if c["packets"] == 0:
        failures.append("edge: no packets, so the values that reached them went unchecked")

    lines, advance_to = synthetic_stream()
    outputs = replay(args.handoffd, config, lines, advance_to=advance_to)
    n = check_inputs("synthetic", lines, outputs)
    c = check_outputs("synthetic", outputs)
    gates = sorted({r["value"]["gate"] for r in outputs if r["topic"] in ROUTING})
    actions = sorted({r["value"]["action"] for r in outputs if r["topic"] == AUDIT})
    classes = sorted({r["value"]["failure_class"] for r in outputs if r["topic"] in ROUTING})
    print(f"synthetic: {n} input lines, {c['packets']} packets, {c['audit']} audit records; "
          f"gates {gates}; audit actions {actions}; {len(classes)} classes")
    # The stream is meant to exercise the schemas broadly; a narrow one would prove little.
    if len(gates) < 6 or len(actions) < 6 or len(classes) < 12:
        failures.append(f"synthetic stream too narrow: gates {gates}, actions {actions}, "
                        f"classes {classes}")

    if failures:
        print(f"FAIL: {len(failures)} problems")
        for f in failures[:40]:
            print("  " + f)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
