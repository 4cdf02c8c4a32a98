"""Live mode end to end: the two sample scenarios of tests/data, produced to the embedded broker
by an external client (confluent_kafka), give the packets `handoffd replay` gives for the same
input, on the right topics, with CloudEvents headers; an ack on handoff.acks is applied.

Event times are shifted so the scenarios end one second ago, and the events are produced before
the worker starts, so it reads them as a backlog: live mode lets the watermark follow the wall
clock once a partition is caught up, so a scenario spanning ten minutes of event time produced to
a caught-up worker would be late (its stall timer would fire before its later events arrive).
"""

import calendar
import json
import os
import time

import kafka_harness as kh


def shifted(lines, end_ms):
    def parse(ts):
        base, frac = ts.rstrip("Z").split(".")
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac[:3])

    objs = [json.loads(l) for l in lines]
    delta = end_ms - max(parse(o["ts"]) for o in objs)
    for o in objs:
        o["ts"] = kh.rfc3339(parse(o["ts"]) + delta)
    return [json.dumps(o) for o in objs]

def main(args):
    data = os.path.join(args.source_dir, "tests", "data")
    end = kh.now_ms() - 1000
    refund = shifted(open(os.path.join(data, "refund-review.jsonl")).read().splitlines(), end)
    ledger = shifted(open(os.path.join(data, "p1-missing-rollback.jsonl")).read().splitlines(), end)
    refund_events = [l for l in refund if not kh.is_ack(json.loads(l))]
    refund_acks = [l for l in refund if kh.is_ack(json.loads(l))]
    assert refund_acks, "the refund-review scenario carries an ack"

    with kh.Env(args, partitions=4, name="e2e") as env:
        env.produce_lines(refund_events + ledger)
        out = env.collector(kh.OUTPUTS)
        started = time.time()
        worker = env.worker("e2e-1", guarantee="exactly_once").start()
        worker.wait_ready()
        status, _ = worker.http("/healthz")
        assert status == 200, status
        # The main loop's heartbeat is exported with the wall time of its progress since start
        # (HandoffdMainLoopStalled watches it).
        _, text = worker.http("/metrics")
        beat = [float(l.split()[1]) for l in text.splitlines()
                if l.startswith("handoffd_main_loop_heartbeat_timestamp_seconds ")]
        assert len(beat) == 1 and beat[0] >= started - 1, (beat, started)

        def has(topic, run_prefix, pred=lambda p: True):
            return lambda recs: any(
                r.topic == topic and r.json()["run_id"].startswith(run_prefix) and pred(r.json())
                for r in recs if r.topic in kh.ROUTING)

        out.wait_for(has("handoff.decisions", "refund-review"), 30, "the refund-review decision")
        out.wait_for(has("handoff.pending", "ledger-close"), 30, "the ledger-close held packet")
        out.wait_for(has("handoff.page", "ledger-close", lambda p: "override" in p.get("flags", [])),
                     30, "the ledger-close override page")
        kh.log("planned packet, held packet and override page arrived")

        # The planned packet, as the contract has it.
        decision = next(r for r in out.records if r.topic == "handoff.decisions")
        p = decision.json()
        assert p["kind"] == "planned" and p["gate"] == "decision", p
        assert p["revision"] == 1 and p["packet_id"].endswith("#1"), p
        assert decision.key == p["run_id"].encode(), decision.key
        assert p["source"]["topic"] == kh.EVENTS, p["source"]

        # The acknowledgement from the alerting side.
        env.produce_lines(refund_acks)
        out.wait_for(lambda recs: any(
            r.topic == kh.AUDIT and r.json()["action"] == "acknowledged" and
            r.json()["packet_id"] == p["packet_id"] for r in recs), 30, "the acknowledged audit")
        kh.log("acknowledgement applied")

        # Everything replay gives for the same input is there, identical but for `source`.
        expected = kh.replay_by_partition(env)
        live = {}
        for r in out.records:
            if r.topic in kh.ROUTING + [kh.AUDIT]:
                kh.check_cloudevents(r)
                live.setdefault((r.topic, r.headers["ce_id"]), r)
        assert kh.check_duplicates_identical(out.records) == 0, "no duplicates without a crash"
        for rec in expected:
            if rec["topic"] not in kh.ROUTING + [kh.AUDIT]:
                continue
            v = rec["value"]
            ce_id = kh.ce_id(rec["topic"], v)
            got = live.get((rec["topic"], ce_id))
            assert got is not None, f"missing on {rec['topic']}: {ce_id}"
            assert kh.strip_source(got.json()) == kh.strip_source(v), (got.value, v)
            assert got.key.decode() == rec["key"], (got.key, rec["key"])
        kh.log(f"{len(expected)} replay records all present live, headers checked")

        # Metrics: the scrape shows the packets.
        status, text = worker.http("/metrics")
        assert status == 200 and "handoffd_handoffs_total" in text, status
        rc, seconds = worker.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
