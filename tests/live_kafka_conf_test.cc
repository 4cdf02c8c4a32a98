// librdkafka configuration from handoffd's Config: pass-through of kafka.properties and the rule
// that secrets never reach a log line.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "processor/live/kafka_conf.h"

namespace handoffd {
namespace {

std::string Get(rd_kafka_conf_t* conf, const char* key) {
  char buf[512];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(conf, key, buf, &size) != RD_KAFKA_CONF_OK) return "<unset>";
  return buf;
}

TEST(LiveKafkaConf, SecretPropertyNamesAreRecognised) {
  for (const char* name : {"sasl.password", "ssl.key.password", "ssl.key.pem", "SASL.JAAS.CONFIG",
                           "sasl.oauthbearer.client.secret", "sasl.oauthbearer.token.endpoint.url",
                           "ssl.keystore.location"}) {
    EXPECT_TRUE(IsSecretProperty(name)) << name;
  }
  for (const char* name :
       {"security.protocol", "sasl.mechanisms", "sasl.username", "ssl.ca.location", "linger.ms"}) {
    EXPECT_FALSE(IsSecretProperty(name)) << name;
  }
}

TEST(LiveKafkaConf, UserPropertiesPassThroughAndHandoffdSettingsWin) {
  Config config = DefaultConfig();
  config.kafka.properties["security.protocol"] = "SASL_SSL";
  config.kafka.properties["sasl.username"] = "svc";
  config.kafka.properties["enable.idempotence"] = "false";
  std::string error;
  rd_kafka_conf_t* conf =
      MakeKafkaConf(config, "b1:9092,b2:9092", {{"enable.idempotence", "true"}}, &error);
  ASSERT_NE(conf, nullptr) << error;
  EXPECT_EQ(Get(conf, "bootstrap.servers"), "b1:9092,b2:9092");
  EXPECT_EQ(Get(conf, "security.protocol"), "sasl_ssl");
  EXPECT_EQ(Get(conf, "sasl.username"), "svc");
  EXPECT_EQ(Get(conf, "enable.idempotence"), "true");
  rd_kafka_conf_destroy(conf);
}

// A real broker answers a fetch as soon as data arrives, so the worker leaves fetch.wait.max.ms
// (and the group timeouts) to librdkafka there: with 5 ms, an idle worker's two consumers would
// send each broker ~400 empty fetches a second.
TEST(LiveKafkaConf, RealClusterConsumersKeepLibrdkafkasFetchWaitAndGroupTimeouts) {
  std::map<std::string, std::string> defaults = ConsumerDefaults(DefaultConfig(), false);
  EXPECT_EQ(defaults.count("fetch.wait.max.ms"), 0u);
  EXPECT_EQ(defaults.count("session.timeout.ms"), 0u);
  EXPECT_EQ(defaults.count("heartbeat.interval.ms"), 0u);
  EXPECT_EQ(defaults["queued.min.messages"], "1000000");
  EXPECT_EQ(defaults["queued.max.messages.kbytes"], "262144");
}

// The embedded broker holds an empty fetch for the whole fetch.wait.max.ms and a rebalance for
// session.timeout.ms - 1 s, so there the consumers wait 5 ms and use a 6 s session.
TEST(LiveKafkaConf, EmbeddedBrokerConsumersGetAShortFetchWaitAndShortSessions) {
  std::map<std::string, std::string> defaults = ConsumerDefaults(DefaultConfig(), true);
  EXPECT_EQ(defaults["fetch.wait.max.ms"], "5");
  EXPECT_EQ(defaults["session.timeout.ms"], "6000");
  EXPECT_EQ(defaults["heartbeat.interval.ms"], "1000");
  EXPECT_EQ(defaults["queued.min.messages"], "1000000");
}

TEST(LiveKafkaConf, UserSetConsumerPropertiesAreNotOverridden) {
  Config config = DefaultConfig();
  config.kafka.properties["fetch.wait.max.ms"] = "50";
  config.kafka.properties["queued.min.messages"] = "10000";
  for (bool embedded : {false, true}) {
    std::map<std::string, std::string> defaults = ConsumerDefaults(config, embedded);
    EXPECT_EQ(defaults.count("fetch.wait.max.ms"), 0u) << embedded;
    EXPECT_EQ(defaults.count("queued.min.messages"), 0u) << embedded;
    EXPECT_EQ(defaults["queued.max.messages.kbytes"], "262144") << embedded;
  }
  std::string error;
  rd_kafka_conf_t* conf = MakeKafkaConf(config, "b1:9092", ConsumerDefaults(config, true), &error);
  ASSERT_NE(conf, nullptr) << error;
  EXPECT_EQ(Get(conf, "fetch.wait.max.ms"), "50");
  EXPECT_EQ(Get(conf, "queued.min.messages"), "10000");
  EXPECT_EQ(Get(conf, "session.timeout.ms"), "6000");
  rd_kafka_conf_destroy(conf);
}

TEST(LiveKafkaConf, RejectedPropertyIsNamedButItsValueIsNot) {
  Config config = DefaultConfig();
  config.kafka.properties["no.such.property"] = "hunter2";
  std::string error;
  EXPECT_EQ(MakeKafkaConf(config, "b:9092", {}, &error), nullptr);
  EXPECT_NE(error.find("no.such.property"), std::string::npos) << error;
  EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
}

// check-config and the commands' start-up use this to reject a property at its config line.
TEST(LiveKafkaConf, CheckGivesLibrdkafkasReasonWithoutTheValue) {
  EXPECT_EQ(CheckKafkaProperty("security.protocol", "SASL_SSL"), "");
  EXPECT_EQ(CheckKafkaProperty("session.timeout.ms", "6000"), "");
  EXPECT_EQ(CheckKafkaProperty("security.protocl", "SASL_SSL"),
            "No such configuration property: \"security.protocl\"");
  EXPECT_EQ(CheckKafkaProperty("security.protocol", "SASL_SSLL"),
            "Invalid value \"(value not shown)\" for configuration property "
            "\"security.protocol\"");
  std::string why = CheckKafkaProperty("enable.idempotence", "maybe");
  EXPECT_NE(why.find("enable.idempotence"), std::string::npos) << why;
  EXPECT_EQ(why.find("maybe"), std::string::npos) << why;
  // A misspelled secret name is named (names are not secret).
  EXPECT_EQ(CheckKafkaProperty("sasl.pasword", "hunter2"),
            "No such configuration property: \"sasl.pasword\"");
}

// Settings that are each valid but refused together only when the client is created: the
// error names the client and carries librdkafka's reason.
TEST(LiveKafkaConf, ClientThatLibrdkafkaRefusesGivesItsReason) {
  Config config = DefaultConfig();
  config.kafka.properties["acks"] = "1";
  std::string error;
  rd_kafka_conf_t* conf = MakeKafkaConf(config, "b:9092", {{"enable.idempotence", "true"}}, &error);
  ASSERT_NE(conf, nullptr) << error;
  EXPECT_EQ(NewKafkaClient(RD_KAFKA_PRODUCER, conf, "producer", &error), nullptr);
  EXPECT_EQ(error.rfind("cannot create producer client: ", 0), 0u) << error;
  EXPECT_NE(error.find("acks"), std::string::npos) << error;
}

// check-config and the commands' start-up: a CA file that cannot be read passes every property
// check and fails only when a client is built; the reason names the setting, not its value.
TEST(LiveKafkaConf, ClientCheckCatchesAnUnreadableCaFileWithoutShowingThePath) {
  Config config = DefaultConfig();
  EXPECT_EQ(CheckKafkaClientConfig(config), "");
  config.kafka.properties["security.protocol"] = "SSL";
  EXPECT_EQ(CheckKafkaClientConfig(config), "");
  config.kafka.properties["ssl.ca.location"] = "/nonexistent/hunter2/ca.pem";
  const std::string why = CheckKafkaClientConfig(config);
  EXPECT_NE(why.find("ssl.ca.location"), std::string::npos) << why;
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
}

// A property that changes a setting the worker depends on was silently replaced by handoffd's
// value (enable.idempotence=false, enable.auto.commit=true) or stopped the worker's start with
// exit 1 (acks=1). It is refused at its config line, naming the setting and why; the same value
// as handoffd's, in any spelling librdkafka takes, changes nothing and is accepted.
TEST(LiveKafkaConf, APropertyThatChangesASettingTheWorkerNeedsIsRefusedNamingIt) {
  const std::pair<const char*, const char*> refused[] = {
      {"enable.idempotence", "false"},         {"acks", "1"},
      {"enable.auto.commit", "true"},          {"enable.auto.offset.store", "true"},
      {"enable.partition.eof", "false"},       {"auto.offset.reset", "latest"},
      {"isolation.level", "read_uncommitted"}, {"partition.assignment.strategy", "range"},
  };
  for (const auto& [key, value] : refused) {
    const std::string why = CheckKafkaProperty(key, value);
    EXPECT_EQ(why.rfind(std::string("handoffd needs ") + key + "=", 0), 0u) << why;
    EXPECT_NE(why.find("remove the property"), std::string::npos) << why;
  }
  EXPECT_EQ(CheckKafkaProperty("acks", "1"),
            "handoffd needs acks=all (its idempotent producer needs every in-sync replica's "
            "acknowledgement); remove the property");
  // An alias is the same setting.
  EXPECT_EQ(CheckKafkaProperty("request.required.acks", "0")
                .rfind("sets acks, and handoffd needs "
                       "acks=all",
                       0),
            0u);
  for (const auto& [key, value] :
       std::vector<std::pair<const char*, const char*>>{{"enable.idempotence", "true"},
                                                        {"acks", "all"},
                                                        {"acks", "-1"},
                                                        {"request.required.acks", "all"},
                                                        {"enable.auto.commit", "false"},
                                                        {"auto.offset.reset", "beginning"},
                                                        {"isolation.level", "read_committed"},
                                                        {"linger.ms", "5"},
                                                        {"retries", "10"}}) {
    EXPECT_EQ(CheckKafkaProperty(key, value), "") << key << "=" << value;
  }
  // Set by handoffd per client: refused whatever the value, which is never shown.
  for (const char* key : {"client.id", "transactional.id"}) {
    const std::string why = CheckKafkaProperty(key, "hunter2");
    EXPECT_NE(why.find("handoffd"), std::string::npos) << key << ": " << why;
    EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
  }
}

// The worker builds its clients from WorkerClientSettings, which carries every required setting.
TEST(LiveKafkaConf, WorkerClientsCarryTheRequiredSettingsAndTheUsersLinger) {
  Config config = DefaultConfig();
  WorkerClientOverrides s = WorkerClientSettings(config, "w1", false);
  for (const RequiredKafkaSetting& r : kRequiredKafkaSettings) {
    if (r.producer) {
      EXPECT_EQ(s.producer.at(r.name), r.value) << r.name;
      continue;
    }
    for (const auto* client : {&s.consumer, &s.acks, &s.restorer}) {
      EXPECT_EQ(client->at(r.name), r.value) << r.name;
    }
  }
  EXPECT_EQ(s.producer.at("transactional.id"), "handoffd-w1");
  EXPECT_EQ(s.producer.at("linger.ms"), "1");
  EXPECT_EQ(s.restorer.at("fetch.wait.max.ms"), "10");
  config.kafka.processing_guarantee = ProcessingGuarantee::kAtLeastOnce;
  s = WorkerClientSettings(config, "w1", false);
  EXPECT_EQ(s.producer.count("transactional.id"), 0u);
  EXPECT_EQ(s.producer.at("linger.ms"), "100");
  // at_least_once: the group member's stored offsets go out with librdkafka's auto-commit
  // (which skips rebalances); nothing is stored but what the worker stores.
  EXPECT_EQ(s.consumer.at("enable.auto.commit"), "true");
  EXPECT_EQ(s.consumer.at("enable.auto.offset.store"), "false");
  EXPECT_EQ(s.acks.at("enable.auto.commit"), "false");
  EXPECT_EQ(s.restorer.at("enable.auto.commit"), "false");
  // linger.ms's other name is the user's linger too: the worker's 100 ms replaced it.
  config.kafka.properties["queue.buffering.max.ms"] = "20";
  s = WorkerClientSettings(config, "w1", false);
  EXPECT_EQ(s.producer.count("linger.ms"), 0u);
}

// Settings each valid alone that conflict with the worker's own stopped `run` with exit 1 when
// it created its clients, after check-config had passed them; the check now builds the worker's
// clients as the worker does.
TEST(LiveKafkaConf, ClientCheckBuildsTheWorkersClients) {
  Config config = DefaultConfig();
  config.kafka.properties["max.in.flight"] = "10";  // the idempotent producer allows 5
  EXPECT_EQ(CheckKafkaClientConfig(config),
            "the worker's producer (idempotent, transactional: exactly_once): `max.in.flight` "
            "must be set <= 5 when `enable.idempotence` is true");
  config.kafka.properties.clear();
  config.kafka.properties["fetch.max.bytes"] = "1000";  // consumers only
  EXPECT_EQ(CheckKafkaClientConfig(config),
            "the worker's consumer: `fetch.max.bytes` must be >= `message.max.bytes`");
  // Only transactions bound socket.timeout.ms by transaction.timeout.ms (60 s).
  config.kafka.properties.clear();
  config.kafka.properties["socket.timeout.ms"] = "120000";
  EXPECT_NE(CheckKafkaClientConfig(config).find("`socket.timeout.ms` must be set <="),
            std::string::npos);
  config.kafka.processing_guarantee = ProcessingGuarantee::kAtLeastOnce;
  EXPECT_EQ(CheckKafkaClientConfig(config), "");
  // The topic metadata client (no group settings) keeps librdkafka's 45 s session.
  config.kafka.properties.clear();
  config.kafka.properties["max.poll.interval.ms"] = "10000";
  EXPECT_EQ(CheckKafkaClientConfig(config, true),
            "the topic metadata client: `max.poll.interval.ms`must be >= `session.timeout.ms`");
}

// A broker that cannot be reached (here: nothing listens on the port) is what a broker restart
// or a network cut looks like to a client, and librdkafka reconnects by itself: the client's
// log says so with warnings naming the error, never with error lines that would page someone.
TEST(LiveKafkaConf, AnUnreachableBrokerIsLoggedAsWarningsNamingTheError) {
  Config config = DefaultConfig();
  std::string error;
  rd_kafka_conf_t* conf =
      MakeKafkaConf(config, "127.0.0.1:1",
                    {{"reconnect.backoff.ms", "10"}, {"client.id", "unreachable"}}, &error);
  ASSERT_NE(conf, nullptr) << error;
  ::testing::internal::CaptureStderr();
  rd_kafka_t* rk = NewKafkaClient(RD_KAFKA_PRODUCER, conf, "producer", &error);
  ASSERT_NE(rk, nullptr) << error;
  for (int i = 0; i < 40; ++i) rd_kafka_poll(rk, 25);  // serves the error callback
  rd_kafka_destroy(rk);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("level=warn msg=\"kafka error\" client=unreachable#producer-"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("error=_TRANSPORT"), std::string::npos) << log;
  EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
}

// kafka.properties reaches every client: a consumer setting must not make each producer warn at
// every start that it ignores it. A property librdkafka itself warns about still does.
TEST(LiveKafkaConf, ConsumerPropertiesGivenToAProducerAreNotWarnings) {
  Config config = DefaultConfig();
  config.kafka.properties = {{"session.timeout.ms", "3000"}, {"fetch.wait.max.ms", "50"}};
  std::string error;
  rd_kafka_conf_t* conf = MakeKafkaConf(config, "127.0.0.1:1", {}, &error);
  ASSERT_NE(conf, nullptr) << error;
  ::testing::internal::CaptureStderr();
  rd_kafka_t* rk = NewKafkaClient(RD_KAFKA_PRODUCER, conf, "producer", &error);
  ASSERT_NE(rk, nullptr) << error;
  rd_kafka_destroy(rk);
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("CONFWARN"), std::string::npos) << log;

  config.kafka.properties = {{"topic.metadata.refresh.fast.cnt", "5"}};  // deprecated
  conf = MakeKafkaConf(config, "127.0.0.1:1", {}, &error);
  ASSERT_NE(conf, nullptr) << error;
  ::testing::internal::CaptureStderr();
  rk = NewKafkaClient(RD_KAFKA_PRODUCER, conf, "producer", &error);
  ASSERT_NE(rk, nullptr) << error;
  rd_kafka_destroy(rk);
  log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("level=warn msg=librdkafka"), std::string::npos) << log;
  EXPECT_NE(log.find("facility=CONFWARN"), std::string::npos) << log;
}

TEST(LiveKafkaConf, ErrorsThatNeedAnOperatorAreLoggedAsErrors) {
  EXPECT_TRUE(IsTransientKafkaError(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN));
  EXPECT_FALSE(IsTransientKafkaError(RD_KAFKA_RESP_ERR__AUTHENTICATION));
  EXPECT_FALSE(IsTransientKafkaError(RD_KAFKA_RESP_ERR__FATAL));
  EXPECT_FALSE(IsTransientKafkaError(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));

  std::string error;
  rd_kafka_conf_t* conf = MakeKafkaConf(DefaultConfig(), "127.0.0.1:1", {}, &error);
  ASSERT_NE(conf, nullptr) << error;
  rd_kafka_t* rk = NewKafkaClient(RD_KAFKA_PRODUCER, conf, "producer", &error);
  ASSERT_NE(rk, nullptr) << error;
  ::testing::internal::CaptureStderr();
  LogKafkaError(rk, RD_KAFKA_RESP_ERR__AUTHENTICATION, "SASL authentication error");
  const std::string log = ::testing::internal::GetCapturedStderr();
  rd_kafka_destroy(rk);
  EXPECT_NE(log.find("level=error msg=\"kafka error\""), std::string::npos) << log;
  EXPECT_NE(log.find("error=_AUTHENTICATION reason=\"SASL authentication error\""),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace handoffd
