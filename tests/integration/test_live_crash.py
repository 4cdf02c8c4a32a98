"""Live mode, crash recovery: a stream of 20,000 events is produced while the worker is killed
with SIGKILL at random points, 5 times, and restarted each time. Afterwards the outputs are
exactly what `handoffd replay` gives for each partition's input (every packet and audit record
present, none extra, identical but for `source`), every duplicate is byte-identical to its first
copy, and packets open at a crash still escalate after the restart.

Event times are current (not historical) and no timer is due while the stream runs, so the
wall-clock watermark of a caught-up partition cannot make live output differ from replay.
"""

import json
import random
import threading
import time

import kafka_harness as kh

TOTAL_EVENTS = 20000
KILLS = 5
def main(args):
    guarantee = args.guarantee or "at_least_once"
    rng = random.Random(int(time.time()))
    with kh.Env(args, partitions=4, name="crash") as env:
        worker = env.worker("crash-1", guarantee=guarantee).start()
        events = kh.synthetic_events(TOTAL_EVENTS, seed=7, start_ms=kh.now_ms(), prefix="cr")

        def produce_slowly():
            for i in range(0, len(events), 400):
                env.produce(kh.EVENTS, events[i:i + 400])
                time.sleep(0.3)

        producer = threading.Thread(target=produce_slowly)
        producer.start()
        for k in range(KILLS):
            worker.wait_ready(timeout=60)
            time.sleep(rng.uniform(0.3, 2.5))
            worker.kill9()
            kh.log(f"kill -9 #{k + 1}")
            worker.start()
        producer.join()
        worker.wait_ready(timeout=60)
        kh.log(f"stream of {len(events)} events produced; {KILLS} kills done")

        expected = kh.expected_outputs(kh.replay_by_partition(env))
        assert len(expected) > 500, len(expected)
        out = env.collector(kh.ROUTING + [kh.AUDIT])
        out.wait_for(lambda rs: len({(r.topic, r.headers["ce_id"]) for r in rs}) >= len(expected),
                     90, f"{len(expected)} distinct outputs")
        out.poll(1)
        kh.assert_outputs_equal_replay(expected, out.records)
        dups = kh.check_duplicates_identical(out.records)
        kh.log(f"{len(expected)} outputs match replay exactly; {dups} duplicates, all identical")

        # Packets open at a crash still escalate. Runs of the current time whose failure event
        # arrives late, stamped so that its P3 ack deadline (14400 s) is 12 s away.
        late = []
        for i in range(6):
            events = kh.run_script(rng, f"esc-{i}", fail=True, severity="P3")
            for key, value in kh.timed(events, kh.now_ms()):
                obj = json.loads(value)
                if obj["type"] == "step_failed":
                    obj["ts"] = kh.rfc3339(kh.now_ms() - 14400 * 1000 + 12000)
                late.append((key, json.dumps(obj)))
        env.produce(kh.EVENTS, late)

        def esc_packets(rs):
            return {r.json()["packet_id"]: r.json() for r in rs
                    if r.topic in kh.ROUTING and r.json()["run_id"].startswith("esc-")
                    and r.json()["revision"] == 1}

        out.wait_for(lambda rs: len(esc_packets(rs)) == 6, 30, "6 packets of the late runs")
        opened = esc_packets(out.records)
        worker.kill9()
        kh.log(f"kill -9 with {len(opened)} packets open, due to escalate in seconds")
        worker.start()
        worker.wait_ready(timeout=60)
        out.wait_for(lambda rs: {r.json()["packet_id"] for r in rs
                                 if r.topic == "handoff.escalations"} >= set(opened),
                     60, "escalations of the packets open at the crash")
        kh.log(f"{len(opened)} packets escalated after the restart")
        kh.check_duplicates_identical(out.records)
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
