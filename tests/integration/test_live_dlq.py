"""Live mode, bad input: records that are not valid events land in agent.events.dlq with their
original key and bytes and the handoffd-error / handoffd-source headers (plus CloudEvents
headers), and the worker keeps going: a valid run after them still gives its packet."""

import json

import kafka_harness as kh


def main(args):
    t = kh.now_ms() - 5000
    bad = [
        (b"k-json", b"{not json"),
        (b"k-array", b"[1,2,3]"),
        (b"k-norun", json.dumps({"event_id": "x1", "type": "heartbeat", "ts": t}).encode()),
        (b"k-ts", json.dumps({"event_id": "x2", "run_id": "r", "type": "heartbeat",
                              "ts": "yesterday"}).encode()),
        (None, json.dumps({"event_id": "x3", "run_id": "r", "type": "decision", "ts": t,
                           "confidence": "high"}).encode()),
    ]
    expected_reasons = ["invalid_json", "not_object", "missing_field:run_id", "bad_timestamp",
                        "wrong_type:confidence"]
    run = "dlq-after-bad-input"
    good = [
        {"event_id": "g1", "run_id": run, "type": "run_started", "ts": t, "workflow_id": "wf",
         "severity": "P3"},
        {"event_id": "g2", "run_id": run, "type": "step_failed", "ts": t + 10, "step": "s1",
         "error": {"code": "permission_denied"}},
    ]
    with kh.Env(args, partitions=2, name="dlq") as env:
        worker = env.worker("dlq-1").start()
        worker.wait_ready()
        env.produce(kh.EVENTS, bad)
        env.produce(kh.EVENTS, [(run, g) for g in good])
        out = env.collector([kh.DLQ] + kh.ROUTING)
        out.wait_for(lambda rs: sum(r.topic == kh.DLQ for r in rs) >= len(bad) and
                     any(r.topic in kh.ROUTING for r in rs), 30, "5 DLQ records and a packet")
        dlq = [r for r in out.records if r.topic == kh.DLQ]
        assert len(dlq) == len(bad), [r.headers for r in dlq]
        by_value = {r.value: r for r in dlq}
        for (key, value), reason in zip(bad, expected_reasons):
            r = by_value.get(value)
            assert r is not None, f"{value!r} not in the DLQ unchanged"
            assert r.key == key, (r.key, key)
            assert r.headers.get("handoffd-error") == reason, (value, r.headers)
            src = r.headers.get("handoffd-source", "")
            topic, part, offset = src.rsplit("/", 2)
            assert topic == kh.EVENTS and int(part) >= 0 and int(offset) >= 0, src
            assert r.headers["ce_id"] == src and r.headers["ce_type"] == "dev.handoffd.dlq.v1", r.headers
            kh.check_cloudevents(r)
        packet = next(r for r in out.records if r.topic in kh.ROUTING).json()
        assert packet["run_id"] == run and packet["failure_class"] == "permission_denied", packet
        kh.log("bad input dead-lettered with headers; the next run still gave its packet")
        status, text = worker.http("/metrics")
        assert 'handoffd_events_invalid_total{reason="invalid_json"} 1' in text, \
            [l for l in text.splitlines() if "invalid" in l]
        rc, _ = worker.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
