"""Live mode, `kafka.bootstrap_servers: embedded`: `handoffd run` starts its own broker with every
topic (the path that shares the embedded broker's topic creation with `handoffd broker`), passes
the co-partitioning check, becomes ready, processes what is produced to it, and stops on
SIGTERM with exit code 0."""

import re

import kafka_harness as kh


def main(args):
    with kh.Env(args, name="embedded-run", start_broker=False) as env:
        worker = kh.Worker(env, "embedded", [
            "kafka.bootstrap_servers=embedded",
            "kafka.partitions=6",
            "kafka.processing_guarantee=at_least_once",
            "metrics.listen=127.0.0.1:0",
        ]).start()
        worker.wait_ready()
        text = worker.current_log()
        m = re.search(r'msg="embedded broker started" bootstrap=(\S+) partitions=6 topics=11', text)
        assert m, text[-3000:]
        assert "topics not co-partitioned" not in text
        assert re.search(r'msg="partitions assigned" partitions=0,1,2,3,4,5 ', text), text[-3000:]

        # The worker's own broker serves external clients too.
        env.use_broker(m.group(1))
        out = env.collector(kh.ROUTING)
        events = kh.synthetic_events(400, seed=5, start_ms=kh.now_ms(), prefix="emb")
        env.produce(kh.EVENTS, events)
        out.wait_for(lambda rs: any(r.json()["run_id"].startswith("emb") for r in rs), 30,
                     "a packet from the embedded broker's worker")
        out.close()
        rc, _ = worker.terminate()
        assert rc == 0, f"exit code {rc}\n{worker.current_log()[-3000:]}"
        kh.log(f"embedded run: broker at {env.bootstrap}, ready, packets out, exit 0")


if __name__ == "__main__":
    kh.run_test(main)
