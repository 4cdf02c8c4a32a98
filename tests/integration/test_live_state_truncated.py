"""Live mode, a changelog that lost its head: when the broker has deleted the oldest records of a
state partition (retention on a state topic that is not compacted, DeleteRecords, or the embedded
broker's ~5 MiB per partition), runs last written there cannot be restored. The worker says so
(level=warn msg="changelog head missing" with the partition and its first offset, and
handoffd_restores_truncated_total), restores what is left and goes on processing."""

import re

from confluent_kafka import Consumer, TopicPartition

import kafka_harness as kh


def main(args):
    with kh.Env(args, partitions=2, name="truncated") as env:
        # ~7 MiB into state partition 0, more than the embedded broker keeps: it drops the oldest
        # record batches. The records are one key's undecodable values with no meta record after
        # them, so the restore discards them (and tombstones the key); partition 1 stays empty.
        producer = env._producer
        for _ in range(1800):
            while True:
                try:
                    producer.produce(kh.STATE, key=b"filler", value=b"x" * 4096, partition=0)
                    break
                except BufferError:
                    producer.poll(0.05)
        assert producer.flush(30) == 0
        probe = Consumer({"bootstrap.servers": env.bootstrap, "group.id": "truncated-probe"})
        low, high = probe.get_watermark_offsets(TopicPartition(kh.STATE, 0), timeout=10)
        probe.close()
        assert low > 0 and high == 1800, (low, high)  # the premise: the broker dropped the head
        kh.log(f"state partition 0 now starts at offset {low} of {high}")

        worker = env.worker("truncated-1").start()
        worker.wait_ready()
        text = worker.current_log()
        warned = re.findall(
            r'level=warn msg="changelog head missing" partition=(\d+) topic=handoffd.state '
            r'first_offset=(\d+)', text)
        assert warned == [("0", str(low))], (warned, text[-3000:])
        _, metrics = worker.http("/metrics")
        truncated = re.search(r"^handoffd_restores_truncated_total (\S+)$", metrics, re.M)
        assert truncated and float(truncated.group(1)) == 1, metrics[-2000:]
        kh.log("restore warned about partition 0 only, handoffd_restores_truncated_total 1")

        # It goes on: new input on both partitions gives packets.
        out = env.collector(kh.ROUTING)
        env.produce(kh.EVENTS, kh.synthetic_events(600, seed=5, start_ms=kh.now_ms(), prefix="tr"))
        out.wait_for(
            lambda rs: {r.partition for r in rs if r.json()["run_id"].startswith("tr")} == {0, 1},
            30, "packets from both partitions")
        rc, _ = worker.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
