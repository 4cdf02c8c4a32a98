#!/usr/bin/env python3
"""The replay and check-config commands as a user runs them: stdin and file input, --advance-to,
--metrics-out, the summary line, exit codes and config errors naming file, line and key; and the
other commands' argument and config errors, which must stop them at once with exit 2."""
import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None


def run(*args, stdin=None):
    return subprocess.run([ARGS.handoffd, *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def refused(test, *args, env=None):
    """Runs a command that must be refused at start: exit 2, and the stderr for more checks. A
    command that ignores the bad input goes on running (broker, generate) and fails the test."""
    try:
        r = subprocess.run([ARGS.handoffd, *args], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired:
        test.fail(f"{args}: still running after 10 s instead of refusing its arguments")
    test.assertEqual(r.returncode, 2, (args, r.stderr))
    return r.stderr


class ReplayCli(unittest.TestCase):
    def setUp(self):
        self.data = os.path.join(ARGS.source_dir, "tests", "data")
        self.catalog = os.path.join(self.data, "test-catalog.yaml")
        self.refund = os.path.join(self.data, "refund-review.jsonl")

    def test_stdin_and_file_give_the_same_bytes(self):
        from_file = run("replay", "--config", self.catalog, self.refund)
        with open(self.refund) as f:
            from_stdin = run("replay", "--config", self.catalog, "-", stdin=f.read())
        self.assertEqual(from_file.returncode, 0, from_file.stderr)
        self.assertEqual(from_file.stdout, from_stdin.stdout)
        self.assertTrue(from_file.stdout)

    def test_summary_line_counts_events_and_records_per_topic(self):
        r = run("replay", "--config", self.catalog, self.refund)
        summary = [l for l in r.stderr.splitlines() if 'msg="replay finished"' in l]
        self.assertEqual(len(summary), 1, r.stderr)
        for field in ("events=6", "invalid=0", "decisions=1", "audit=2", "events_per_s="):
            self.assertIn(field, summary[0])

    def test_advance_to_fires_due_timers_at_the_end(self):
        plain = run("replay", "--config", self.catalog, self.refund).stdout.splitlines()
        advanced = run("replay", "--config", self.catalog, "--advance-to",
                       "2026-05-25T00:00:00Z", self.refund).stdout.splitlines()
        self.assertEqual(advanced[:len(plain)], plain)
        extra = [json.loads(l)["value"] for l in advanced[len(plain):]]
        # Acknowledged, so at expires_at (detected + 4 h) the incident closes, not expires.
        self.assertEqual((extra[0]["action"], extra[0]["at"]),
                         ("closed", "2026-05-24T19:00:12.000Z"))
        # The run never completed: once nobody waits on a human any more, it is stalled
        # stall_timeout_s (600 s) later, and that packet escalates and expires unacknowledged.
        packets = [v for v in extra if "failure_class" in v]
        self.assertEqual(packets[0]["failure_class"], "stalled")
        self.assertEqual(packets[0]["detected_at"], "2026-05-24T19:10:12.000Z")
        self.assertEqual(extra[-1]["action"], "expired")

    def test_metrics_out_writes_the_mtta_sample(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "metrics.prom")
            r = run("replay", "--config", self.catalog, "--metrics-out", path, self.refund)
            self.assertEqual(r.returncode, 0, r.stderr)
            text = open(path).read()
        self.assertIn('handoffd_time_to_ack_seconds_sum{severity="P2"} 180', text)
        self.assertIn('handoffd_time_to_ack_seconds_count{severity="P2"} 1', text)

    def test_every_output_line_is_json_even_for_input_that_is_not_utf8(self):
        bad = [b'{"event_id":"e1","run_id":"r\xff","type":"heartbeat","ts":1}',
               b'\xc3\x28 not json \xed\xa0\x80',
               b'{"event_id":"e2","run_id":"r","type":"heartbeat","ts":1,"x":"\xe2\x82"}']
        rng = random.Random(5)  # and random bytes, mostly not UTF-8
        alphabet = [b for b in range(256) if b not in b"\r\n"]
        bad += [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                for _ in range(300)]
        good = '{"event_id":"e3","run_id":"r","type":"heartbeat","ts":"yesterday \u00e9"}'
        stdin = b"\n".join(bad + [good.encode()]) + b"\n"
        r = subprocess.run([ARGS.handoffd, "replay", "--config", self.catalog, "-"], input=stdin,
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        records = [json.loads(line.decode("utf-8")) for line in r.stdout.splitlines()]
        self.assertEqual(len(records), len(bad) + 1)
        for record, raw in zip(records, bad):
            self.assertEqual(record["topic"], "agent.events.dlq")
            # The text as Python (and browsers) decode it, U+FFFD per ill-formed subpart; the
            # exact bytes in value_base64 when they are not UTF-8.
            self.assertEqual(record["value_raw"], raw.decode("utf-8", errors="replace"))
            try:
                raw.decode("utf-8")
                self.assertNotIn("value_base64", record)
            except UnicodeDecodeError:
                self.assertEqual(base64.b64decode(record["value_base64"]), raw)
        self.assertEqual(records[0]["error"], "invalid_json")
        self.assertEqual(records[1]["value_raw"], "\ufffd( not json \ufffd\ufffd\ufffd")
        self.assertEqual(records[-1]["error"], "bad_timestamp")
        self.assertEqual(records[-1]["value_raw"], good)
        self.assertNotIn("value_base64", records[-1])

    def test_check_config_accepts_the_shipped_config(self):
        r = run("check-config", "--config",
                os.path.join(ARGS.source_dir, "config", "handoffd.yaml"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_config_errors_name_file_line_and_key_and_exit_2(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write("kafka:\n  group_id: x\ndefaults:\n  stall_timeout: 10\n")
            r = run("check-config", "--config", path)
            self.assertEqual(r.returncode, 2)
            self.assertIn(f"{path}:4: defaults.stall_timeout", r.stdout)
            r = run("replay", "--config", path, self.refund)
            self.assertEqual(r.returncode, 2)
            self.assertEqual(r.stdout, "")

    def test_check_config_rejects_a_kafka_property_librdkafka_rejects(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "props.yaml")
            with open(path, "w") as f:
                f.write("kafka:\n  properties:\n    sasl.password: hunter2\n"
                        "    security.protocl: SASL_SSL\n")
            r = run("check-config", "--config", path)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(f'{path}:4: kafka.properties.security.protocl: No such configuration '
                          'property: "security.protocl"', r.stdout)
            r = run("check-config", "--config", path, "--set",
                    "kafka.properties.security.protocl=hunter3")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--set:kafka.properties.security.protocl:", r.stdout)
            self.assertNotIn("hunter", r.stdout + r.stderr)

    def test_a_kafka_setting_only_client_creation_rejects_is_a_config_error(self):
        # Each property is valid alone; librdkafka reads the CA file only when it builds a client.
        # Exit 2 (deploy/ does not restart it), not 1 (a restart loop that cannot succeed).
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tls.yaml")
            with open(path, "w") as f:
                f.write("kafka:\n  properties:\n    security.protocol: SSL\n"
                        "    ssl.ca.location: /nonexistent/hunter2-ca.pem\n")
            r = run("check-config", "--config", path)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("ssl.ca.location", r.stdout)
            self.assertNotIn("hunter2", r.stdout + r.stderr)
            for cmd in (["run"], ["topics", "create"]):
                r = run(*cmd, "--config", path, "--set", "kafka.bootstrap_servers=127.0.0.1:1")
                self.assertEqual(r.returncode, 2, r.stderr)
                lines = [l for l in r.stderr.splitlines() if 'msg="bad configuration"' in l]
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertIn("ssl.ca.location", lines[0])
                self.assertNotIn("hunter2", lines[0])
                # Refused before any broker is asked (these follow a wait for 127.0.0.1:1).
                self.assertNotIn("topic creation", r.stderr)
                self.assertNotIn("cannot check topic partitions", r.stderr)

    def test_a_kafka_property_that_changes_what_the_worker_needs_is_a_config_error(self):
        # check-config passed these and `run` exited 1 when the worker created its clients (acks,
        # fetch.max.bytes) or silently replaced them (enable.auto.commit). Now both refuse them
        # with exit 2 naming the key: at its line for one setting, and for settings that only
        # conflict once a client is built, with the client and librdkafka's reason.
        with tempfile.TemporaryDirectory() as d:
            cases = (("acks: 1", ":3: kafka.properties.acks: handoffd needs acks=all"),
                     ("enable.auto.commit: true",
                      ":3: kafka.properties.enable.auto.commit: handoffd needs "
                      "enable.auto.commit=false"),
                     ("fetch.max.bytes: 1000", ": kafka.properties: the worker's consumer: "
                      "`fetch.max.bytes` must be >= `message.max.bytes`"))
            for prop, message in cases:
                path = os.path.join(d, "props.yaml")
                with open(path, "w") as f:
                    f.write(f"kafka:\n  properties:\n    {prop}\n")
                r = run("check-config", "--config", path)
                self.assertEqual(r.returncode, 2, (prop, r.stderr))
                self.assertIn(path + message, r.stdout)
                # The embedded broker: the old code started it and failed at the clients.
                err = refused(self, "run", "--config", path, "--set",
                              "metrics.listen=127.0.0.1:0")
                lines = [l for l in err.splitlines() if 'msg="bad configuration"' in l]
                self.assertEqual(len(lines), 1, err)
                self.assertIn(message.split(": ", 1)[1].replace('"', '\\"'), lines[0])
                self.assertNotIn("embedded broker started", err)

    def test_output_that_cannot_be_written_exits_1(self):
        with open("/dev/full", "w") as full:
            r = subprocess.run([ARGS.handoffd, "replay", "--config", self.catalog, self.refund],
                               stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('level=error msg="replay: cannot write output"', r.stderr)
        self.assertNotIn('msg="replay finished"', r.stderr)

    def test_input_that_is_a_directory_exits_1_as_a_missing_file_does(self):
        r = run("replay", "--config", self.catalog, self.data)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("is a directory", r.stderr)
        self.assertEqual(r.stdout, "")
        r = run("replay", "--config", self.catalog, os.path.join(self.data, "no-such.jsonl"))
        self.assertEqual(r.returncode, 1, r.stderr)

    def test_extra_arguments_are_refused_with_exit_2(self):
        r = run("check-config", "--config", self.catalog, "other.yaml")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('unexpected argument \\"other.yaml\\"', r.stderr)
        # Refused before any broker is looked for: without the check this would wait for
        # 127.0.0.1:1 and exit 1.
        r = run("run", "--config", self.catalog, "--set", "kafka.bootstrap_servers=127.0.0.1:1",
                "other.yaml")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('unexpected argument \\"other.yaml\\"', r.stderr)
        # broker and generate ignored them: `broker 8` started a 4-partition broker.
        err = refused(self, "broker", "8")
        self.assertIn('unexpected argument \\"8\\" (broker takes', err)
        err = refused(self, "generate", "--config", self.catalog, "--set",
                      "kafka.bootstrap_servers=127.0.0.1:1", "--rate", "10", "--count", "1", "5")
        self.assertIn('unexpected argument \\"5\\" (generate takes', err)
        err = refused(self, "version", "--config", self.catalog)
        self.assertIn('unexpected argument \\"--config\\" (version takes none)', err)

    def test_generate_exits_1_when_its_records_are_not_delivered(self):
        # The broker dies half a second into a 2 s run: generate exited 0 and said "generate
        # done", having delivered only the first half second of records.
        with tempfile.TemporaryDirectory() as tmp:
            bootstrap_file = os.path.join(tmp, "bootstrap")
            broker = subprocess.Popen([ARGS.handoffd, "broker", "--partitions", "2",
                                       "--bootstrap-file", bootstrap_file],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 20
                while not (os.path.exists(bootstrap_file) and os.path.getsize(bootstrap_file)):
                    self.assertLess(time.time(), deadline, "the broker wrote no bootstrap file")
                    time.sleep(0.05)
                with open(bootstrap_file) as f:
                    bootstrap = f.read().strip()
                gen = subprocess.Popen(
                    [ARGS.handoffd, "generate", "--config", self.catalog, "--set",
                     f"kafka.bootstrap_servers={bootstrap}", "--set",
                     "kafka.properties.message.timeout.ms=1000", "--rate", "500", "--duration",
                     "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                time.sleep(0.5)
            finally:
                broker.kill()
                broker.wait()
            _, err = gen.communicate(timeout=60)
        self.assertEqual(gen.returncode, 1, err)
        line = [l for l in err.splitlines() if 'msg="records not delivered"' in l]
        self.assertEqual(len(line), 1, err)
        failed = int(line[0].split(" failed=")[1].split()[0])
        self.assertGreater(failed, 0, line[0])

    def test_an_empty_instance_name_is_refused(self):
        # `--instance "$NAME"` with NAME unset gave every such worker the transactional id
        # "<group_id>-": they fenced each other under exactly_once.
        r = run("run", "--config", self.catalog, "--set", "kafka.bootstrap_servers=127.0.0.1:1",
                "--instance", "")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--instance must not be empty", r.stderr)

    def test_broker_set_without_config_is_refused(self):
        # Without --config, broker started with the built-in topics and ignored the --set.
        env = dict(os.environ, HANDOFFD_TEST_TOPIC="events")
        for flag in ("--set", "--set-env"):
            err = refused(self, "broker", flag, "topics.events=HANDOFFD_TEST_TOPIC", env=env)
            self.assertIn("--set and --set-env need --config FILE", err)

    def test_numbers_that_are_not_numbers_are_refused(self):
        # atoi/atof read "4x" as 4 and "ten" as 0: --duration 0 sent nothing and exited 0, a
        # negative --count ran until stopped.
        err = refused(self, "broker", "--partitions", "4x")
        self.assertIn('--partitions: expected an integer, got \\"4x\\"', err)
        gen = ["generate", "--config", self.catalog, "--set", "kafka.bootstrap_servers=127.0.0.1:1"]
        for flags, what in ((["--rate", "10x"], '--rate: expected a number, got \\"10x\\"'),
                            (["--rate", "10", "--duration", "ten"],
                             '--duration: expected a number, got \\"ten\\"'),
                            (["--rate", "10", "--count", "-1"], "--count: must be at least 0"),
                            (["--rate", "10", "--count", "1", "--seed", "x"],
                             '--seed: expected an integer, got \\"x\\"')):
            err = refused(self, *gen, *flags)
            self.assertIn(what, err)

    def test_help_after_any_command_prints_the_usage(self):
        for cmd in ("run", "replay", "check-config", "broker", "generate", "topics"):
            r = run(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd + ": " + r.stderr)
            self.assertIn("usage: handoffd <command>", r.stdout, cmd)

    def test_an_unknown_log_level_fails_at_start(self):
        env = dict(os.environ, HANDOFFD_LOG_LEVEL="warning")
        r = subprocess.run([ARGS.handoffd, "replay", "--config", self.catalog, self.refund],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn('key=HANDOFFD_LOG_LEVEL value=warning expected=debug|info|warn|error',
                      r.stderr)

    def test_set_env_sets_a_key_to_the_variable_byte_for_byte(self):
        # Unquoted YAML would read "*" as an alias, " #" as a comment and '"' as quotes.
        rollback = '*refundctl void "drafts": --all #1 {x} '
        env = dict(os.environ, HANDOFFD_TEST_ROLLBACK=rollback)
        r = subprocess.run([ARGS.handoffd, "replay", "--config", self.catalog, "--set-env",
                            "workflows.refund-review.rollback_command=HANDOFFD_TEST_ROLLBACK",
                            self.refund], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        packets = [json.loads(l)["value"] for l in r.stdout.splitlines()]
        commands = {p["rollback_command"] for p in packets if "rollback_command" in p}
        self.assertEqual(commands, {rollback})
        # check-config takes it too; a property value that librdkafka rejects is named by its
        # key and variable, never shown.
        env["HANDOFFD_TEST_SECRET"] = "hunter2 #x"
        r = subprocess.run([ARGS.handoffd, "check-config", "--config", self.catalog,
                            "--set-env", "kafka.properties.sasl.username=HANDOFFD_TEST_ROLLBACK",
                            "--set-env",
                            "kafka.properties.socket.timeout.ms=HANDOFFD_TEST_SECRET"],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--set-env:kafka.properties.socket.timeout.ms=HANDOFFD_TEST_SECRET:",
                      r.stdout)
        self.assertNotIn("hunter2", r.stdout + r.stderr)

    def test_set_env_of_an_unset_variable_exits_2_naming_it(self):
        env = {k: v for k, v in os.environ.items() if k != "HANDOFFD_TEST_UNSET"}
        for cmd in ("replay", "check-config", "run"):
            r = subprocess.run([ARGS.handoffd, cmd, "--config", self.catalog, "--set-env",
                                "kafka.properties.sasl.password=HANDOFFD_TEST_UNSET"],
                               capture_output=True, text=True, timeout=60, env=env,
                               stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 2, (cmd, r.stderr))
            self.assertIn("environment variable HANDOFFD_TEST_UNSET is not set", r.stderr)

    def test_bad_set_and_unknown_command_exit_2(self):
        self.assertEqual(run("replay", "--config", self.catalog, "--set", "nope.key=1",
                             self.refund).returncode, 2)
        self.assertEqual(run("frobnicate").returncode, 2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--handoffd", required=True)
    parser.add_argument("--source-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
