"""Live mode, rebalance: two workers in one consumer group split the partitions (cooperative-
sticky); stopping one moves its partitions and their state (through the changelog) to the other.
No packet is lost, none is extra (outputs equal `handoffd replay` of each partition's input), and
packets opened on the stopped worker still escalate on time on the survivor."""

import json
import random
import time

import kafka_harness as kh

PARTITIONS = 4
DEADLINE_S = 20  # the late packets' ack deadline, from production
def wait_split(a, b, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pa, pb = a.owned_partitions(), b.owned_partitions()
        if pa and pb and not (pa & pb) and len(pa | pb) == PARTITIONS:
            return pa, pb
        time.sleep(0.3)
    raise AssertionError(f"no split: a={a.owned_partitions()} b={b.owned_partitions()}")


def main(args):
    guarantee = args.guarantee or "exactly_once"
    rng = random.Random(5)
    with kh.Env(args, partitions=PARTITIONS, name="rebalance") as env:
        a = env.worker("rb-a", guarantee=guarantee).start()
        a.wait_ready()
        b = env.worker("rb-b", guarantee=guarantee).start()
        b.wait_ready()
        pa, pb = wait_split(a, b)
        kh.log(f"split: rb-a owns {sorted(pa)}, rb-b owns {sorted(pb)}")

        env.produce(kh.EVENTS, kh.synthetic_events(3000, seed=21, start_ms=kh.now_ms(), prefix="rb"))
        late = []
        for i in range(12):
            for key, value in kh.timed(kh.run_script(rng, f"late-{i}", fail=True, severity="P3"),
                                       kh.now_ms()):
                obj = json.loads(value)
                if obj["type"] == "step_failed":
                    obj["ts"] = kh.rfc3339(kh.now_ms() - 14400 * 1000 + DEADLINE_S * 1000)
                late.append((key, json.dumps(obj)))
        env.produce(kh.EVENTS, late)
        out = env.collector(kh.ROUTING + [kh.AUDIT])

        def late_packets(rs):
            return {r.json()["packet_id"]: r for r in rs if r.topic in kh.ROUTING
                    and r.json()["run_id"].startswith("late-") and r.json()["revision"] == 1}

        out.wait_for(lambda rs: len(late_packets(rs)) == 12, 30, "12 late packets")
        opened = late_packets(out.records)
        on_a = [pid for pid, r in opened.items() if r.json()["source"]["partition"] in pa]
        assert on_a, "no late packet on rb-a's partitions; the test would prove nothing"

        rc, seconds = a.terminate()
        assert rc == 0, rc
        kh.log(f"rb-a stopped (exit 0 in {seconds:.2f}s) with {len(on_a)} open packets")
        deadline = time.time() + 30
        while b.owned_partitions() != set(range(PARTITIONS)):
            assert time.time() < deadline, f"rb-b owns {b.owned_partitions()}"
            time.sleep(0.2)
        kh.log("rb-b owns every partition")

        out.wait_for(lambda rs: {r.json()["packet_id"] for r in rs
                                 if r.topic == "handoff.escalations"} >= set(opened),
                     DEADLINE_S + 30, "escalations of every late packet")
        kh.log(f"all {len(opened)} late packets escalated, {len(on_a)} of them moved from rb-a")

        time.sleep(1)
        out.poll(1)
        expected = kh.expected_outputs(kh.replay_by_partition(env, advance_to=kh.now_ms() - 2500))
        kh.assert_outputs_equal_replay(expected, out.records)
        dups = kh.check_duplicates_identical(out.records)
        kh.log(f"{len(expected)} outputs equal replay; {dups} duplicates, all identical")
        rc, _ = b.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
