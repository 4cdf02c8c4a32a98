"""Live mode on the embedded broker with no group settings of the user's: a second worker added to
a running group gets its share of the partitions within seconds, and stopping it gives them back
within seconds. librdkafka 2.0.2's mock holds every rebalance that a member's join or leave starts
for session.timeout.ms - 1 s, however soon the members rejoin; with librdkafka's default 45 s that
was 88 s for a scale-out (cooperative-sticky: two rebalances) and 43 s after a graceful leave. The
worker recognises the embedded broker by its cluster id and uses a 6 s session there
(kEmbeddedConsumerDefaults, processor/live/kafka_conf.h), and a 5 ms fetch wait."""

import time

import kafka_harness as kh

PARTITIONS = 4
SCALE_OUT_S = 30  # two rebalances of 5 s, the join and the restores
SCALE_IN_S = 20


def wait_owned(worker, want, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        worker.check_alive()
        if want(worker.owned_partitions()):
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout}s: {worker.name} owns "
                         f"{sorted(worker.owned_partitions())}\n{worker.current_log()[-3000:]}")


def main(args):
    with kh.Env(args, partitions=PARTITIONS, name="scaling") as env:
        everything = set(range(PARTITIONS))
        a = env.worker("sc-a", group_timeouts=False).start()
        a.wait_ready()
        wait_owned(a, lambda owned: owned == everything, 10, "first worker owns all")
        lines = [l for l in a.current_log().splitlines()
                 if 'msg="embedded broker consumer settings"' in l]
        assert (len(lines) == 1 and "session_timeout_ms=6000" in lines[0]
                and "fetch_wait_max_ms=5" in lines[0]), a.current_log()[-3000:]

        t0 = time.time()
        b = env.worker("sc-b", group_timeouts=False).start()
        wait_owned(b, lambda owned: owned and not (owned & a.owned_partitions())
                   and owned | a.owned_partitions() == everything, SCALE_OUT_S, "scale-out")
        kh.log(f"scale-out: sc-b owns {sorted(b.owned_partitions())} after {time.time() - t0:.1f}s")

        rc, _ = b.terminate()
        assert rc == 0, rc
        t1 = time.time()
        wait_owned(a, lambda owned: owned == everything, SCALE_IN_S, "scale-in")
        kh.log(f"scale-in: sc-a owns all {PARTITIONS} again {time.time() - t1:.1f}s after sc-b left")
        rc, _ = a.terminate()
        assert rc == 0, rc


if __name__ == "__main__":
    kh.run_test(main)
