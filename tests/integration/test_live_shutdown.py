"""Live mode, SIGTERM: the worker finishes its batch, commits, leaves the group and exits 0 well
within kafka.shutdown_timeout_ms; a restart resumes at the committed offsets and reprocesses
nothing (no output record appears twice), then goes on with new input. A SIGTERM while the
worker still waits for an unreachable cluster at start also ends it at once with exit code 0."""

import re
import socket
import time

import kafka_harness as kh


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_while_starting(args):
    """Nothing listens at the bootstrap address: the worker's start-up checks wait 15 s for
    metadata. A supervisor's SIGTERM then must not wait for them, nor end it by the signal."""
    with kh.Env(args, name="shutdown-start", start_broker=False) as env:
        env.bootstrap = f"127.0.0.1:{closed_port()}"
        worker = env.worker("unreachable").start()
        deadline = time.time() + 10
        while "Connection refused" not in worker.current_log():
            worker.check_alive()
            assert time.time() < deadline, worker.current_log()
            time.sleep(0.05)
        rc, seconds = worker.terminate()
        assert rc == 0, f"exit code {rc}\n{worker.current_log()[-2000:]}"
        assert seconds < 2, f"took {seconds:.1f}s"
        assert 'msg="stopped before start" reason=signal' in worker.current_log()
        kh.log(f"SIGTERM while waiting for the cluster at start: exit 0 in {seconds:.2f}s")


def main(args):
    stop_while_starting(args)
    with kh.Env(args, partitions=2, name="shutdown") as env:
        worker = env.worker("shutdown-1", guarantee="exactly_once").start()
        worker.wait_ready()
        events = kh.synthetic_events(3000, seed=11, start_ms=kh.now_ms(), prefix="sd")
        env.produce(kh.EVENTS, events)
        out = env.collector(kh.ROUTING + [kh.AUDIT])
        expected = [r for r in kh.replay_by_partition(env) if r["topic"] in kh.ROUTING + [kh.AUDIT]]
        assert len(expected) > 100, len(expected)
        out.wait_for(lambda rs: len(rs) >= len(expected), 60, f"{len(expected)} outputs")
        before = len(out.records)

        rc, seconds = worker.terminate()
        assert rc == 0, f"exit code {rc}"
        assert seconds < 10, f"took {seconds:.1f}s (shutdown_timeout_ms is 10000)"
        text = worker.current_log()
        assert 'msg="partitions revoked"' in text and 'msg=stopped' in text, text[-2000:]
        kh.log(f"SIGTERM: exit 0 in {seconds:.2f}s")

        worker.start()
        worker.wait_ready()
        # The restored offsets are the ends of the input partitions: nothing to reprocess.
        restored = dict(re.findall(r'msg="partition restored" partition=(\d+) .*events_offset=(-?\d+)',
                                   worker.current_log()))
        ends = {}
        c = env.collector([kh.EVENTS])
        c.poll(1.5)
        for r in c.records:
            ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
        c.close()
        assert restored == {str(p): str(o) for p, o in ends.items()}, (restored, ends)
        out.poll(3)
        assert len(out.records) == before, f"{len(out.records) - before} records reprocessed"
        kh.log("restart resumed at the committed offsets, nothing reprocessed")

        more = kh.synthetic_events(300, seed=12, start_ms=kh.now_ms(), prefix="sd2")
        env.produce(kh.EVENTS, more)
        out.wait_for(lambda rs: any(r.topic in kh.ROUTING and r.json()["run_id"].startswith("sd2")
                                    for r in rs), 30, "packets of the new input")
        assert kh.check_duplicates_identical(out.records) == 0
        rc, _ = worker.terminate()
        assert rc == 0, rc
        out.close()


if __name__ == "__main__":
    kh.run_test(main)
