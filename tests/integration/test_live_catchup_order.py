"""Live mode, a backlog with acks: a worker starts on 20 s of events already on the topic (a
restart after an outage, a new owner) in which run X opens a P3 packet at S+10 s (level 2 due at
S+15 s with a 5 s first response), and on the acks produced meanwhile, one of which acknowledges
X at S+11 s. The worker reads the events and acks topics through two consumers; before the acks
waited for the events they follow in event time, a round applied the acks first: they moved the
watermark past S+15 s before X's packet existed, the ack found nothing to acknowledge and was
dropped, and X escalated twice. Replay of the time-ordered input acknowledges X and escalates
nothing; so must the worker."""

import json

import kafka_harness as kh


def event(run_id, n, ts, **fields):
    return (run_id, json.dumps(dict(fields, event_id=f"{run_id}-{n}", run_id=run_id,
                                    ts=kh.rfc3339(ts))))


def ack(run_id, ts, n):
    return (run_id, json.dumps({"type": "handoff_acknowledged", "event_id": f"ack-{n}",
                                "run_id": run_id, "ts": kh.rfc3339(ts), "by": "alice"}))


def main(args):
    start = kh.now_ms() - 30000
    events = []
    for i in range(20000):
        if i == 10000:
            events.append(event("X", "a", start + 10000, type="run_started",
                                workflow_id="wf", severity="P3", objective="close the books"))
            events.append(event("X", "b", start + 10000, type="step_failed", step="post",
                                error={"code": "write_failed", "message": "ledger locked"}))
        # An event of another run every millisecond: the backlog's event time, 20 s of it.
        events.append(event("filler", i, start + i, type="heartbeat"))
    acks = [ack("X" if j == 11 else f"other-{j}", start + j * 1000, j) for j in range(1, 21)]
    with kh.Env(args, partitions=1, name="catchup") as env:
        env.produce(kh.EVENTS, events)
        env.produce(kh.ACKS, acks)
        out = env.collector([kh.AUDIT, "handoff.escalations"])
        worker = env.worker("catchup-1", extra_sets=["sla.P3.first_response_s=5"]).start()
        worker.wait_ready()

        def trail():
            return [r.json()["action"] for r in out.records
                    if r.topic == kh.AUDIT and r.json()["packet_id"] == "X#1"]
        out.wait_for(lambda rs: "acknowledged" in trail() or "escalated" in trail(), 30,
                     "X#1's acknowledgement or escalation")
        # Caught up, the watermark follows the wall clock (S+30 s and on): any escalation still
        # due would be out within a tick and the allowed lateness.
        out.poll(3)
        assert trail() == ["emitted", "acknowledged"], trail()
        assert not [r for r in out.records if r.topic == "handoff.escalations"], "escalated"
        kh.log("the backlog's ack was applied after its packet opened and before its deadline")
        rc, _ = worker.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
