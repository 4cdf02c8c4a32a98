"""Live mode on the embedded broker, a long run: the broker keeps ~5 MiB per partition and drops
the oldest records, which would take the changelog records of long-lived runs with them. The
worker writes a snapshot of the partition (every run, after a marker record) once the changelog
since the last one passes 1 MiB beyond it, so what the broker keeps always holds a whole
snapshot. Here a run with an open packet is written once, then ~6 MiB of other runs' changes
follow; after a kill -9 the restarted worker still knows the packet: its acknowledgement gives
the `acknowledged` audit record, the restore says the dropped head was behind a snapshot, and
the first change after the restore is a snapshot again."""

import json
import random
import re
import time

from confluent_kafka import Consumer, TopicPartition

import kafka_harness as kh


def successful_runs(rng, prefix, count):
    """(key, json) pairs of `count` runs that succeed, stamped with the wall clock now."""
    out = []
    ts = kh.rfc3339(kh.now_ms())
    for n in range(count):
        for e in kh.run_script(rng, f"{prefix}-{n}", fail=False, severity="P3"):
            e["ts"] = ts
            out.append((e["run_id"], json.dumps(e)))
    return out


def state_watermarks(env):
    c = Consumer({"bootstrap.servers": env.bootstrap, "group.id": "snapshot-probe"})
    try:
        return c.get_watermark_offsets(TopicPartition(kh.STATE, 0), timeout=10)
    finally:
        c.close()


def main(args):
    with kh.Env(args, partitions=1, name="snapshot") as env:
        # Completed runs are forgotten after 1 s (and not retired), so the state stays small
        # while its changelog grows; the run with the open packet stays.
        worker = env.worker("snapshot-1",
                            extra_sets=["limits.completed_run_retention_s=1",
                                        "limits.retired_run_memory_s=0"]).start()
        worker.wait_ready()
        out = env.collector(["handoff.tickets", kh.AUDIT])
        keep = kh.run_script(random.Random(1), "keep-1", fail=True, severity="P3")
        env.produce(kh.EVENTS, kh.timed(keep, kh.now_ms()))
        out.wait_for(lambda rs: any(r.topic == "handoff.tickets" and
                                    r.json()["run_id"] == "keep-1" for r in rs),
                     30, "keep-1's ticket")
        ticket = next(r.json() for r in out.records
                      if r.topic == "handoff.tickets" and r.json()["run_id"] == "keep-1")
        kh.log(f"keep-1 opened {ticket['packet_id']}")

        # Other runs' changes until the broker has dropped the partition's oldest records. Each
        # chunk's runs complete, and the caught-up worker's clock forgets them 1 s later
        # (tombstones), so the state stays a chunk or two while the changelog grows.
        rng = random.Random(2)
        chunk = 0
        low, high = 0, 0
        while low == 0:
            chunk += 1
            assert chunk <= 60, f"the state partition never lost its head ({high} records)"
            env.produce(kh.EVENTS, successful_runs(rng, f"fill{chunk}", 2000))
            time.sleep(1.5)
            low, high = state_watermarks(env)
        kh.log(f"after {chunk} chunks the state partition starts at offset {low} of {high}")
        text = worker.current_log()
        snapshots = [int(b) for b in
                     re.findall(r'msg="changelog snapshot" partition=0 runs=\d+ bytes=(\d+)', text)]
        assert snapshots, text[-3000:]
        assert "state too large" not in text, text[-3000:]
        kh.log(f"{len(snapshots)} snapshots of {min(snapshots)}-{max(snapshots)} bytes")

        worker.kill9()
        worker.start()
        worker.wait_ready()
        text = worker.current_log()
        assert re.search(r'msg="changelog head dropped behind a snapshot" partition=0 ', text), \
            text[-3000:]
        assert "changelog head missing" not in text, text[-3000:]
        _, metrics = worker.http("/metrics")
        truncated = re.search(r"^handoffd_restores_truncated_total (\S+)$", metrics, re.M)
        assert truncated and float(truncated.group(1)) == 0, metrics[-2000:]

        # The packet survived: its acknowledgement is applied.
        ack = {"type": "handoff_acknowledged", "run_id": "keep-1", "by": "oncall",
               "packet_id": ticket["packet_id"], "ts": kh.rfc3339(kh.now_ms())}
        env.produce(kh.ACKS, [("keep-1", ack)])
        out.wait_for(lambda rs: any(r.topic == kh.AUDIT and r.json()["action"] == "acknowledged"
                                    and r.json()["packet_id"] == ticket["packet_id"] for r in rs),
                     30, "the acknowledged audit of keep-1's packet")
        kh.log("restored from the snapshot: keep-1's packet was acknowledged after the restart")
        # Where the restored log's last snapshot starts is unknown, so the first change after
        # the restore is written as a snapshot, before more changes push the old one out.
        deadline = time.time() + 10
        while 'msg="changelog snapshot" partition=0' not in worker.current_log():
            assert time.time() < deadline, worker.current_log()[-3000:]
            time.sleep(0.2)
        rc, _ = worker.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
