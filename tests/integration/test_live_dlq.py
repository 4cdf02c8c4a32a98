"""Live mode, bad input: records that are not valid events land in agent.events.dlq with their
original key and bytes and the handoffd-error / handoffd-source headers (plus CloudEvents headers),
and the worker keeps going (also past an event nested 400,000 levels deep): a valid run after them
still gives its packet. Records near Kafka's ~1 MB limit do not stop it either: a valid event with
a 1 MB error message gives a packet whose summary is cut (limits.max_field_bytes), and an oversized
event too large for the producer to send back is dead-lettered without its bytes. An event keyed by
something else than its run_id is counted, one stamped a day ahead of its record does not fire
every timer, and one stamped in epoch seconds (1970) is dead-lettered as stale_timestamp."""

import json
import re
import time

from confluent_kafka import Producer

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
        # Epoch seconds where the contract says milliseconds: January 1970, 56 years before
        # the record's Kafka timestamp (live mode only; replay has no record times).
        (b"k-seconds", json.dumps({"event_id": "x4", "run_id": "r", "type": "heartbeat",
                                   "ts": t // 1000}).encode()),
        # 400,000 nested arrays in a field nobody reads (800 kB): the decoder once recursed
        # once per bracket and the worker died of a stack overflow on every restart.
        (b"k-deep", b'{"event_id":"x5","run_id":"r","type":"heartbeat","ts":%d,"x":' % t +
         b"[" * 400000 + b"]" * 400000 + b"}"),
    ]
    expected_reasons = ["invalid_json", "not_object", "missing_field:run_id", "bad_timestamp",
                        "wrong_type:confidence", "stale_timestamp", "invalid_json"]
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
                     any(r.topic in kh.ROUTING for r in rs), 30, f"{len(bad)} DLQ records and a packet")
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
        # The worker's log says where bad input came from (at most one line per second per
        # partition, the rest counted in suppressed=): the first dead letter of each partition
        # is logged with its source and reason.
        dead = {(r.headers["handoffd-source"], r.headers["handoffd-error"]) for r in dlq}
        lines = re.findall(r'level=warn msg="event dead-lettered" source=(\S+) reason=(\S+)',
                           worker.log_text())
        assert lines and set(lines) <= dead, (lines, dead)
        first = {}
        for src, reason in sorted(dead, key=lambda d: int(d[0].rsplit("/", 1)[1])):
            first.setdefault(src.rsplit("/", 1)[0], (src, reason))
        assert set(first.values()) <= set(lines), (first, lines)
        kh.log("bad input dead-lettered with headers and logged; the next run still gave its packet")
        status, text = worker.http("/metrics")
        assert 'handoffd_events_invalid_total{reason="invalid_json"} 2' in text, \
            [l for l in text.splitlines() if "invalid" in l]

        # Before limits.max_field_bytes, this valid event (under max_event_bytes, 1 MiB) made a
        # packet the producer refused (message.max.bytes 1,000,000): the batch failed, the worker
        # exited 1, and every restart met the event again.
        big_run = "dlq-big-valid"
        message = "m" * 1030000
        big = [
            (big_run, json.dumps({"event_id": "b1", "run_id": big_run, "type": "run_started",
                                  "ts": t + 20, "workflow_id": "wf", "severity": "P3"})),
            (big_run, json.dumps({"event_id": "b2", "run_id": big_run, "type": "step_failed",
                                  "ts": t + 30, "step": "s1",
                                  "error": {"code": "permission_denied", "message": message}})),
        ]
        # Valid, but keyed by something else than its run_id: processed, and counted.
        miskeyed = ("tenant-9", json.dumps({"event_id": "k1", "run_id": "dlq-miskeyed",
                                             "type": "heartbeat", "ts": t + 40}))
        oversized = b'{"pad":"' + b"p" * 1100000 + b'"}'  # over max_event_bytes (1 MiB)
        producer = Producer({"bootstrap.servers": env.bootstrap, "message.max.bytes": 3000000,
                             "log_level": 0})
        for key, value in big + [miskeyed, ("k-oversized", oversized)]:
            producer.produce(kh.EVENTS, key=key, value=value)
        # A producer that sets record timestamps of its own, here 1 s after the epoch: no bound on
        # the event time (not counted as ahead of it, below).
        producer.produce(kh.EVENTS, key="dlq-epoch-record", timestamp=1000,
                         value=json.dumps({"event_id": "r1", "run_id": "dlq-epoch-record",
                                           "type": "heartbeat", "ts": t + 50}))
        assert producer.flush(30) == 0
        out.wait_for(lambda rs: any(r.topic in kh.ROUTING and r.json()["run_id"] == big_run
                                    for r in rs) and
                     any(r.topic == kh.DLQ and r.headers.get("handoffd-error") == "oversized"
                         for r in rs), 30, "the big run's packet and the oversized dead letter")
        worker.check_alive()
        record = next(r for r in out.records
                      if r.topic in kh.ROUTING and r.json()["run_id"] == big_run)
        summary = record.json()["error_summary"]
        assert len(record.value) < 20000, len(record.value)
        assert summary.startswith("permission_denied: mmm") and \
            summary.endswith("... [truncated, 1030000 bytes]"), summary[-80:]
        dead = next(r for r in out.records
                    if r.topic == kh.DLQ and r.headers.get("handoffd-error") == "oversized")
        assert dead.value is None and dead.key == b"k-oversized", (dead.key, dead.value and len(dead.value))
        assert dead.headers["handoffd-original-bytes"] == str(len(oversized)), dead.headers
        _, text = worker.http("/metrics")
        for limit in ("max_field_bytes", "message_max_bytes_dlq"):
            assert f'handoffd_limit_hits_total{{limit="{limit}"}} 1' in text, \
                [l for l in text.splitlines() if "limit_hits" in l]
        # The mis-keyed event may sit in another partition than the records waited for above.
        deadline = time.time() + 20
        while 'handoffd_key_mismatch_total{topic="agent.events"} 1' not in text:
            assert time.time() < deadline, [l for l in text.splitlines() if "key_mismatch" in l]
            time.sleep(0.2)
            _, text = worker.http("/metrics")
        assert 'msg="record key is not its run_id"' in worker.current_log()
        kh.log("a 1 MB error message gave a cut packet; a 1.1 MB input a dead letter without its "
               "bytes; an event keyed by a tenant id was counted")

        # A producer whose clock is a day ahead. By event time alone the watermark would jump a
        # day and the open P3 packet of the run above would escalate twice and expire at once;
        # its record's Kafka timestamp (now) bounds the jump to time.max_future_ms.
        ahead = kh.now_ms() + 86400000
        env.produce(kh.EVENTS, [("dlq-clock-ahead", {"event_id": "c1", "run_id": "dlq-clock-ahead",
                                                     "type": "heartbeat", "ts": ahead})])
        def escalations():
            return [r.headers.get("ce_id") for r in out.records if r.topic == "handoff.escalations"]
        deadline = time.time() + 20
        while 'handoffd_events_ahead_total{topic="agent.events"} 1' not in worker.http("/metrics")[1]:
            out.poll(0.3)
            assert not escalations(), escalations()
            assert time.time() < deadline, "the event from the future was not counted"
        out.poll(2)  # a commit interval and more: escalations would be out by now
        assert not escalations(), escalations()
        assert 'msg="event time ahead of record time"' in worker.current_log()
        kh.log("an event a day ahead of its record time escalated nothing")

        rc, _ = worker.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
