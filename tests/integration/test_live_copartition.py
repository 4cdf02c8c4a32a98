"""Live mode, co-partitioning: a worker whose state topic has a different partition count than
its events and acks topics (here one the broker auto-created with its default count, as a
cluster does for a producer that writes to an unknown topic) refuses to start: it exits non-zero
with one error line naming each topic and its count, before joining the group. On the embedded
broker, a missing state topic is named at once (the mock cannot create topics). A worker on
topics created together starts."""

import re
import subprocess

import kafka_harness as kh
from confluent_kafka import Producer

PARTITIONS = 8
STATE = "handoffd.state.autocreated"


def auto_create(bootstrap, topic):
    """Has the broker auto-create `topic` (a producer's metadata request); returns its count."""
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 0})
    md = producer.list_topics(topic=topic, timeout=10)
    assert md.topics[topic].error is None, md.topics[topic].error
    return len(md.topics[topic].partitions)


def main(args):
    with kh.Env(args, partitions=PARTITIONS, name="copartition") as env:
        state_count = auto_create(env.bootstrap, STATE)
        assert state_count != PARTITIONS, f"the broker's default count is {PARTITIONS} too"

        bad = env.worker("copart-bad", extra_sets=[f"topics.state={STATE}"]).start()
        try:
            rc = bad.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("worker with a mis-partitioned state topic kept running\n" +
                                 bad.current_log()[-3000:])
        text = bad.current_log()
        assert rc != 0, f"exit code {rc}\n{text[-3000:]}"
        lines = [l for l in text.splitlines() if 'msg="topics not co-partitioned"' in l]
        assert len(lines) == 1, text[-3000:]
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', lines[0]))
        assert fields["level"] == "error", lines[0]
        assert fields["events"] == str(PARTITIONS) and fields["acks"] == str(PARTITIONS), lines[0]
        assert fields["state"] == str(state_count), lines[0]
        assert (fields["events_topic"], fields["acks_topic"], fields["state_topic"]) == (
            kh.EVENTS, kh.ACKS, STATE), lines[0]
        assert "hint" in fields, lines[0]
        assert 'msg="worker started"' not in text, "subscribed before the check"
        kh.log(f"mis-partitioned state topic: exit {rc}, {lines[0].split('msg=', 1)[1][:80]}...")

        # A state topic the embedded broker does not have: the mock cannot create topics through
        # the admin API, so the worker says which are missing instead of waiting for CreateTopics
        # to time out (it did, for 15 s), then refuses to start.
        missing = env.worker("copart-missing",
                             extra_sets=["topics.state=handoffd.state.missing"]).start()
        rc = missing.proc.wait(timeout=60)
        text = missing.current_log()
        assert rc != 0, f"exit code {rc}\n{text[-3000:]}"
        warn = [l for l in text.splitlines() if 'msg="topic creation skipped"' in l]
        assert len(warn) == 1 and "embedded broker cannot create topics" in warn[0] \
            and "handoffd.state.missing" in warn[0], text[-3000:]
        assert "CreateTopics timed out" not in text, text[-3000:]
        assert re.search(r'msg="topics not co-partitioned".* state=missing', text), text[-3000:]
        kh.log("missing state topic on the embedded broker: named at once, exit " + str(rc))

        good = env.worker("copart-good").start()
        good.metrics_port()  # logged after the check passed
        good.check_alive()
        assert 'topics not co-partitioned' not in good.current_log()
        rc, _ = good.terminate()
        assert rc == 0, f"exit code {rc}"
        kh.log("co-partitioned topics: the worker starts")


if __name__ == "__main__":
    kh.run_test(main)
