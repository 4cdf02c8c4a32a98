#include "config/config_loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "config/listen_address.h"
#include "processor/json_text.h"

namespace handoffd {
namespace {

// A key path in the YAML tree, one element per map key or list index ("[2]"). Kept as segments
// because kafka.properties keys and workflow ids may themselves contain dots.
using Path = std::vector<std::string>;

Path Child(const Path& path, std::string segment) {
  Path out = path;
  out.push_back(std::move(segment));
  return out;
}

// `s` itself when it is valid UTF-8, else with every byte outside printable ASCII as \xNN: an
// error message naming a key must not carry the invalid bytes into the log line.
std::string Printable(const std::string& s) {
  if (IsValidUtf8(s)) return s;
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

std::string Dotted(const Path& path) {
  std::string out;
  for (const std::string& s : path) {
    if (!out.empty() && s.front() != '[') out += '.';
    out += Printable(s);
  }
  return out.empty() ? "(document)" : out;
}

bool IsPrefix(const Path& prefix, const Path& path) {
  return prefix.size() <= path.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr double kNoLimit = std::numeric_limits<double>::infinity();
constexpr std::string_view kSeverities = "P1, P2, P3";

// Classes a step_failed error code can map to; the others have their own triggers.
constexpr std::array<FailureClass, 8> kCodeClasses = {
    FailureClass::kMissingInput,       FailureClass::kDuplicateEntity,
    FailureClass::kConflictingContext, FailureClass::kDownstreamWriteFailure,
    FailureClass::kSchemaInvalid,      FailureClass::kPermissionDenied,
    FailureClass::kUnsupportedRequest, FailureClass::kUnclassifiedFailure};

std::string AllClassNames() {
  std::string out;
  for (int i = 0; i < kFailureClassCount; ++i) {
    if (i > 0) out += ", ";
    out += ToString(static_cast<FailureClass>(i));
  }
  return out;
}

std::string CodeClassNames() {
  std::string out;
  for (FailureClass c : kCodeClasses) {
    if (!out.empty()) out += ", ";
    out += ToString(c);
  }
  return out;
}

std::string TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return node.Tag() == "!" ? "a quoted string" : "a scalar";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "nothing";
}

// Kafka topic names: 1..249 characters of [a-zA-Z0-9._-] (Kafka's own rule).
bool IsValidTopicName(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

// The YAML events of a text, without building nodes. YAML::Load reads the first document only
// and silently drops the rest, so the loader counts documents itself; and a node tree no longer
// shows an anchor ("&x hello" loads as "hello"), so --set values are checked for them here.
class YamlScan : public YAML::EventHandler {
 public:
  // Marks of each document's start (its "---", or its first token when there is none).
  const std::vector<YAML::Mark>& document_starts() const { return document_starts_; }
  // Whether any node had an anchor ("&x") or an explicit tag ("!x", "!!str").
  bool anchor_or_tag() const { return anchor_or_tag_; }

  void OnDocumentStart(const YAML::Mark& mark) override { document_starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { Node("?", anchor); }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                const std::string&) override {
    Node(tag, anchor);
  }
  void OnSequenceStart(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Node(tag, anchor);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Node(tag, anchor);
  }
  void OnMapEnd() override {}

 private:
  // yaml-cpp's tag is "?" for a plain node and "!" for a quoted scalar; anything else was written.
  void Node(const std::string& tag, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor || (tag != "?" && tag != "!" && !tag.empty())) {
      anchor_or_tag_ = true;
    }
  }

  std::vector<YAML::Mark> document_starts_;
  bool anchor_or_tag_ = false;
};

// A --set or --set-env as applied to the tree: the key's path and the override (which outlives
// the Loader).
struct AppliedOverride {
  Path path;
  const ConfigOverride* source;
};

// Walks one YAML document over DefaultConfig(), validating as it goes. Every error goes through
// Fail(), which names where the offending value came from: the file and line, or the --set.
class Loader {
 public:
  // `overrides`: the keys --set and --set-env assigned, in order; `created_paths`: the maps they
  // created on the way to them (absent from the file).
  Loader(std::string name, std::vector<AppliedOverride> overrides, std::vector<Path> created_paths,
         PropertyCheck check_property)
      : name_(std::move(name)),
        overrides_(std::move(overrides)),
        created_paths_(std::move(created_paths)),
        check_property_(std::move(check_property)) {}

  Config Load(const YAML::Node& root) {
    Config config = DefaultConfig();
    if (root.IsNull()) return config;  // an empty file: every default
    Fields(root, {}, YAML::Mark(),
           {
               {"kafka", [&](const YAML::Node& n, const Path& p,
                             const YAML::Mark& m) { Kafka(n, p, m, config.kafka); }},
               {"topics", [&](const YAML::Node& n, const Path& p,
                              const YAML::Mark& m) { Topics(n, p, m, config.topics); }},
               {"metrics",
                [&](const YAML::Node& n, const Path& p, const YAML::Mark& m) {
                  Fields(n, p, m, {{"listen", [&](auto& v, auto& vp, auto& vm) {
                                      config.metrics.listen = String(v, vp, vm);
                                      if (!ParseListenAddress(config.metrics.listen)) {
                                        Fail(vp, vm,
                                             "\"" + config.metrics.listen + "\" is not " +
                                                 std::string(kListenAddressRule));
                                      }
                                    }}});
                }},
               {"time",
                [&](const YAML::Node& n, const Path& p, const YAML::Mark& m) {
                  Fields(n, p, m,
                         {{"allowed_lateness_ms",
                           [&](auto& v, auto& vp, auto& vm) {
                             config.time.allowed_lateness_ms = Int(v, vp, vm, 0, kMaxInt);
                           }},
                          {"max_future_ms",
                           [&](auto& v, auto& vp, auto& vm) {
                             config.time.max_future_ms = Int(v, vp, vm, 0, kMaxInt);
                           }},
                          {"max_past_ms", [&](auto& v, auto& vp, auto& vm) {
                             config.time.max_past_ms = Int(v, vp, vm, 0, kMaxInt);
                           }}});
                }},
               {"limits", [&](const YAML::Node& n, const Path& p,
                              const YAML::Mark& m) { Limits(n, p, m, config.limits); }},
               {"defaults", [&](const YAML::Node& n, const Path& p,
                                const YAML::Mark& m) { Defaults(n, p, m, config.defaults); }},
               {"classes", [&](const YAML::Node& n, const Path& p,
                               const YAML::Mark& m) { Classes(n, p, m, config.classes); }},
               {"rules", [&](const YAML::Node& n, const Path& p,
                             const YAML::Mark& m) { Rules(n, p, m, config.rules); }},
               {"workflows", [&](const YAML::Node& n, const Path& p,
                                 const YAML::Mark& m) { Workflows(n, p, m, config.workflows); }},
               {"sla", [&](const YAML::Node& n, const Path& p,
                           const YAML::Mark& m) { Sla(n, p, m, config.sla); }},
           });
    return config;
  }

 private:
  using Handler = std::function<void(const YAML::Node&, const Path&, const YAML::Mark&)>;

  // Whether the node at `path` came from the command line: it is at or under a --set key, or it
  // is a map a --set created. A map of the file that a --set only walked through is the file's.
  bool FromSet(const Path& path) const {
    for (const AppliedOverride& o : overrides_) {
      if (IsPrefix(o.path, path)) return true;
    }
    for (const Path& c : created_paths_) {
      if (c == path) return true;
    }
    return false;
  }

  // The --set-env override that gave the node at `path` its value (the last one over it), if any.
  const ConfigOverride* LiteralOver(const Path& path) const {
    const ConfigOverride* last = nullptr;
    for (const AppliedOverride& o : overrides_) {
      if (IsPrefix(o.path, path)) last = o.source;
    }
    return last != nullptr && last->literal ? last : nullptr;
  }

  [[noreturn]] void Fail(const Path& path, const YAML::Mark& mark, const std::string& what) const {
    if (const ConfigOverride* o = LiteralOver(path)) {
      // The value is usually a secret: the variable's name stands wherever the message quotes it.
      std::string redacted = what;
      const std::string stand_in = "(value of " + o->env_var + ")";
      if (!o->value.empty()) {
        for (size_t at = redacted.find(o->value); at != std::string::npos;
             at = redacted.find(o->value, at + stand_in.size())) {
          redacted.replace(at, o->value.size(), stand_in);
        }
      }
      throw ConfigError("--set-env:" + Dotted(path) + "=" + o->env_var + ": " + redacted);
    }
    if (FromSet(path)) throw ConfigError("--set:" + Dotted(path) + ": " + what);
    int line = mark.is_null() ? 1 : mark.line + 1;
    throw ConfigError(name_ + ":" + std::to_string(line) + ": " + Dotted(path) + ": " + what);
  }

  void ExpectMap(const YAML::Node& node, const Path& path, const YAML::Mark& mark) const {
    if (!node.IsMap()) Fail(path, mark, "expected a map, got " + TypeName(node));
  }

  // Calls the handler of each key of the map `node`. Unknown and repeated keys are errors: a typo
  // must never fall back to a default. `mark` locates `node` itself (its key's line).
  void Fields(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
              std::initializer_list<std::pair<std::string_view, Handler>> handlers) const {
    ExpectMap(node, path, mark);
    std::set<std::string, std::less<>> seen;
    for (const auto& kv : node) {
      const std::string& key = kv.first.Scalar();
      Path key_path = Child(path, key);
      YAML::Mark key_mark = kv.first.Mark();
      ExpectUtf8(key, key_path, key_mark);
      if (!seen.insert(key).second) Fail(key_path, key_mark, "duplicate key");
      const Handler* handler = nullptr;
      for (const auto& [name, h] : handlers) {
        if (name == key) handler = &h;
      }
      if (handler == nullptr) {
        std::string known;
        for (const auto& [name, h] : handlers) {
          if (!known.empty()) known += ", ";
          known += name;
        }
        Fail(key_path, key_mark, "unknown key (expected one of: " + known + ")");
      }
      (*handler)(kv.second, key_path, key_mark);
    }
  }

  // Calls `each` for every entry of a map whose keys are names chosen by the user (workflow
  // ids, class names, property names); repeated keys are errors.
  void Entries(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
               const std::function<void(const std::string&, const YAML::Node&, const Path&,
                                        const YAML::Mark&)>& each) const {
    ExpectMap(node, path, mark);
    std::set<std::string, std::less<>> seen;
    for (const auto& kv : node) {
      const std::string& key = kv.first.Scalar();
      Path key_path = Child(path, key);
      if (!kv.first.IsScalar() || key.empty()) Fail(key_path, kv.first.Mark(), "bad key");
      ExpectUtf8(key, key_path, kv.first.Mark());
      if (!seen.insert(key).second) Fail(key_path, kv.first.Mark(), "duplicate key");
      each(key, kv.second, key_path, kv.first.Mark());
    }
  }

  // Config text reaches packet JSON and Prometheus labels (workflow ids), which must be UTF-8:
  // invalid bytes would make the exposition unparsable and the packets invalid JSON text.
  void ExpectUtf8(const std::string& text, const Path& path, const YAML::Mark& mark) const {
    if (!IsValidUtf8(text)) Fail(path, mark, "not valid UTF-8");
  }

  void ExpectScalar(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
                    std::string_view expected) const {
    if (!node.IsScalar()) {
      Fail(path, mark, "expected " + std::string(expected) + ", got " + TypeName(node));
    }
    ExpectUtf8(node.Scalar(), path, mark);
  }

  std::string String(const YAML::Node& node, const Path& path, const YAML::Mark& mark) const {
    ExpectScalar(node, path, mark, "a string");
    if (node.Scalar().empty()) Fail(path, mark, "must not be empty");
    return node.Scalar();
  }

  // Numbers and booleans must be plain scalars: "300" in quotes is a string, not a number, and
  // so is "!!str 300"; any other tag ("!!int 300", "!x 300") is refused too rather than ignored.
  void ExpectPlain(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
                   std::string_view expected) const {
    ExpectScalar(node, path, mark, expected);
    if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
      Fail(path, mark, "expected " + std::string(expected) + ", got a string");
    }
    if (node.Tag() != "?") {
      Fail(path, mark,
           "expected " + std::string(expected) + ", got a scalar tagged \"" + node.Tag() +
               "\" (write it plain, without a tag)");
    }
  }

  int64_t Int(const YAML::Node& node, const Path& path, const YAML::Mark& mark, int64_t min,
              int64_t max) const {
    ExpectPlain(node, path, mark, "an integer");
    int64_t value = 0;
    if (!YAML::convert<int64_t>::decode(node, value)) {
      Fail(path, mark, "expected an integer, got \"" + node.Scalar() + "\"");
    }
    if (value < min || value > max) {
      std::string range = max == kMaxInt ? "at least " + std::to_string(min)
                                         : std::to_string(min) + ".." + std::to_string(max);
      Fail(path, mark, "must be " + range + ", got " + std::to_string(value));
    }
    return value;
  }

  // A finite number in [min, max]; max may be infinity for "no upper bound".
  double Double(const YAML::Node& node, const Path& path, const YAML::Mark& mark, double min,
                double max) const {
    ExpectPlain(node, path, mark, "a number");
    double value = 0;
    if (!YAML::convert<double>::decode(node, value)) {
      Fail(path, mark, "expected a number, got \"" + node.Scalar() + "\"");
    }
    if (!std::isfinite(value) || value < min || value > max) {
      std::ostringstream range;
      if (std::isinf(max)) {
        range << "a finite number of at least " << min;
      } else {
        range << min << ".." << max;
      }
      Fail(path, mark, "must be " + range.str() + ", got " + node.Scalar());
    }
    return value;
  }

  bool Bool(const YAML::Node& node, const Path& path, const YAML::Mark& mark) const {
    ExpectPlain(node, path, mark, "true or false");
    bool value = false;
    if (!YAML::convert<bool>::decode(node, value)) {
      Fail(path, mark, "expected true or false, got \"" + node.Scalar() + "\"");
    }
    return value;
  }

  Severity SeverityValue(const YAML::Node& node, const Path& path, const YAML::Mark& mark) const {
    ExpectScalar(node, path, mark, "a severity");
    std::optional<Severity> s = ParseSeverity(node.Scalar());
    if (!s) {
      Fail(path, mark,
           "\"" + node.Scalar() +
               "\" is not a severity (expected one of: " + std::string(kSeverities) + ")");
    }
    return *s;
  }

  FailureClass ClassName(const std::string& text, const Path& path, const YAML::Mark& mark) const {
    std::optional<FailureClass> c = ParseFailureClass(text);
    if (!c) {
      Fail(path, mark,
           "\"" + text + "\" is not a failure class (expected one of: " + AllClassNames() + ")");
    }
    return *c;
  }

  // A map of class name -> recommended action text.
  void Actions(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
               ClassStrings& out) const {
    Entries(node, path, mark,
            [&](const std::string& key, const YAML::Node& v, const Path& p, const YAML::Mark& m) {
              out[static_cast<size_t>(ClassName(key, p, m))] = String(v, p, m);
            });
  }

  void Kafka(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
             KafkaConfig& kafka) const {
    Fields(node, path, mark,
           {
               {"bootstrap_servers",
                [&](auto& v, auto& p, auto& m) { kafka.bootstrap_servers = String(v, p, m); }},
               {"group_id", [&](auto& v, auto& p, auto& m) { kafka.group_id = String(v, p, m); }},
               {"processing_guarantee",
                [&](auto& v, auto& p, auto& m) {
                  std::string g = String(v, p, m);
                  if (g == "exactly_once") {
                    kafka.processing_guarantee = ProcessingGuarantee::kExactlyOnce;
                  } else if (g == "at_least_once") {
                    kafka.processing_guarantee = ProcessingGuarantee::kAtLeastOnce;
                  } else {
                    Fail(p, m, "\"" + g + "\" is not exactly_once or at_least_once");
                  }
                }},
               {"properties",
                [&](auto& v, auto& p, auto& m) {
                  kafka.properties.clear();
                  // Values may be secrets: messages name the key, never the value.
                  Entries(v, p, m,
                          [&](const std::string& key, const YAML::Node& value, const Path& kp,
                              const YAML::Mark& km) {
                            if (!value.IsScalar()) {
                              Fail(kp, km, "expected a scalar value (the value is not shown)");
                            }
                            ExpectUtf8(value.Scalar(), kp, km);
                            // Two places for one setting: the property would silently win.
                            if (key == "bootstrap.servers" || key == "metadata.broker.list") {
                              Fail(kp, km, "set kafka.bootstrap_servers instead");
                            }
                            if (key == "group.id") Fail(kp, km, "set kafka.group_id instead");
                            // A misspelled name or a bad value would otherwise pass check-config
                            // and stop `run` later, far from this line.
                            if (check_property_) {
                              std::string why = check_property_(key, value.Scalar());
                              if (!why.empty()) Fail(kp, km, why);
                            }
                            kafka.properties[key] = value.Scalar();
                          });
                }},
               {"commit_interval_ms",
                [&](auto& v, auto& p, auto& m) {
                  kafka.commit_interval_ms = Int(v, p, m, 1, kMaxInt);
                }},
               {"shutdown_timeout_ms",
                [&](auto& v, auto& p, auto& m) {
                  kafka.shutdown_timeout_ms = Int(v, p, m, 0, kMaxInt);
                }},
               {"max_failed_commits",
                [&](auto& v, auto& p, auto& m) {
                  kafka.max_failed_commits = static_cast<int32_t>(Int(v, p, m, 1, 1000000));
                }},
               {"pipeline_threads",
                [&](auto& v, auto& p, auto& m) {
                  kafka.pipeline_threads = static_cast<int32_t>(Int(v, p, m, 1, 64));
                }},
               {"partitions",
                [&](auto& v, auto& p, auto& m) {
                  kafka.partitions = static_cast<int32_t>(Int(v, p, m, 1, 1 << 20));
                }},
               {"replication_factor",
                [&](auto& v, auto& p, auto& m) {
                  kafka.replication_factor = static_cast<int32_t>(Int(v, p, m, 1, 32767));
                }},
           });
  }

  void Topics(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
              TopicsConfig& topics) const {
    // Remembers where each topic name came from, to report a clash at the second one.
    std::vector<std::tuple<std::string, Path, YAML::Mark>> given;
    auto topic = [this, &given](std::string& field) {
      return [this, &given, f = &field](const YAML::Node& v, const Path& p, const YAML::Mark& m) {
        *f = String(v, p, m);
        if (!IsValidTopicName(*f)) {
          Fail(p, m, "\"" + *f + "\" is not a valid Kafka topic name ([a-zA-Z0-9._-], 1..249)");
        }
        given.emplace_back(*f, p, m);
      };
    };
    Fields(node, path, mark,
           {{"events", topic(topics.events)},
            {"acks", topic(topics.acks)},
            {"page", topic(topics.page)},
            {"owner_queue", topic(topics.owner_queue)},
            {"tickets", topic(topics.tickets)},
            {"decisions", topic(topics.decisions)},
            {"pending", topic(topics.pending)},
            {"escalations", topic(topics.escalations)},
            {"audit", topic(topics.audit)},
            {"dlq", topic(topics.dlq)},
            {"state", topic(topics.state)}});
    // Two roles on one topic would loop outputs into inputs or mix record kinds.
    const std::pair<std::string_view, const std::string*> all[] = {
        {"events", &topics.events},   {"acks", &topics.acks},
        {"page", &topics.page},       {"owner_queue", &topics.owner_queue},
        {"tickets", &topics.tickets}, {"decisions", &topics.decisions},
        {"pending", &topics.pending}, {"escalations", &topics.escalations},
        {"audit", &topics.audit},     {"dlq", &topics.dlq},
        {"state", &topics.state}};
    // The clash is reported at a name that came from --set if one did, else at the later of the
    // two in the file (the earlier may be the one the user meant).
    const std::tuple<std::string, Path, YAML::Mark>* blamed = nullptr;
    std::string_view blamed_other;
    for (const auto& entry : given) {
      const auto& [name, p, m] = entry;
      for (const auto& [other, value] : all) {
        if (*value != name || p.back() == other) continue;
        if (blamed == nullptr || !FromSet(std::get<1>(*blamed))) {
          blamed = &entry;
          blamed_other = other;
        }
        break;
      }
    }
    if (blamed != nullptr) {
      const auto& [name, p, m] = *blamed;
      Fail(p, m, "topic \"" + name + "\" is also used for topics." + std::string(blamed_other));
    }
  }

  void Limits(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
              LimitsConfig& limits) const {
    auto positive = [this](int64_t& field) {
      return [this, f = &field](const YAML::Node& v, const Path& p, const YAML::Mark& m) {
        *f = Int(v, p, m, 1, kMaxInt);
      };
    };
    Fields(
        node, path, mark,
        {{"max_event_bytes", positive(limits.max_event_bytes)},
         {"max_active_runs", positive(limits.max_active_runs)},
         {"max_seen_event_ids_per_run", positive(limits.max_seen_event_ids_per_run)},
         {"max_open_packets_per_run", positive(limits.max_open_packets_per_run)},
         {"max_steps_per_run", positive(limits.max_steps_per_run)},
         {"max_field_bytes",
          [&](auto& v, auto& p, auto& m) { limits.max_field_bytes = Int(v, p, m, 256, kMaxInt); }},
         {"completed_run_retention_s",
          [&](auto& v, auto& p, auto& m) {
            limits.completed_run_retention_s = Int(v, p, m, 0, kMaxInt);
          }},
         {"retired_run_memory_s", [&](auto& v, auto& p, auto& m) {
            limits.retired_run_memory_s = Int(v, p, m, 0, kMaxInt);
          }}});
  }

  void Defaults(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
                DefaultsConfig& d) const {
    Fields(
        node, path, mark,
        {
            {"severity", [&](auto& v, auto& p, auto& m) { d.severity = SeverityValue(v, p, m); }},
            {"confidence_threshold",
             [&](auto& v, auto& p, auto& m) { d.confidence_threshold = Double(v, p, m, 0, 1); }},
            {"max_retries",
             [&](auto& v, auto& p, auto& m) { d.max_retries = Int(v, p, m, 0, kMaxInt); }},
            {"stall_timeout_s",
             [&](auto& v, auto& p, auto& m) { d.stall_timeout_s = Int(v, p, m, 1, kMaxInt); }},
            {"p1_max_hold_s",
             [&](auto& v, auto& p, auto& m) { d.p1_max_hold_s = Int(v, p, m, 0, kMaxInt); }},
            {"p1_blast_radius_users",
             [&](auto& v, auto& p, auto& m) {
               d.p1_blast_radius_users = Int(v, p, m, 0, kMaxInt);
             }},
            {"recommended_actions",
             [&](auto& v, auto& p, auto& m) { Actions(v, p, m, d.recommended_actions); }},
        });
  }

  void Classes(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
               std::array<ClassConfig, kFailureClassCount>& classes) const {
    Entries(node, path, mark,
            [&](const std::string& key, const YAML::Node& v, const Path& p, const YAML::Mark& m) {
              ClassConfig& c = classes[static_cast<size_t>(ClassName(key, p, m))];
              Fields(v, p, m, {{"min_severity", [&](auto& sv, auto& sp, auto& sm) {
                                  c.min_severity = SeverityValue(sv, sp, sm);
                                }}});
            });
  }

  // User rules go before the built-in ones, in file order, so the first match wins.
  void Rules(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
             std::vector<Rule>& rules) const {
    if (!node.IsSequence()) Fail(path, mark, "expected a list of rules, got " + TypeName(node));
    std::vector<Rule> user;
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node& entry = node[i];
      Path entry_path = Child(path, "[" + std::to_string(i) + "]");
      YAML::Mark entry_mark = entry.Mark();
      Rule rule{{}, FailureClass::kUnclassifiedFailure};
      bool has_codes = false;
      bool has_class = false;
      Fields(entry, entry_path, entry_mark,
             {{"codes",
               [&](const YAML::Node& v, const Path& p, const YAML::Mark& m) {
                 has_codes = true;
                 if (!v.IsSequence()) Fail(p, m, "expected a list of codes, got " + TypeName(v));
                 if (v.size() == 0) Fail(p, m, "must list at least one code");
                 for (size_t j = 0; j < v.size(); ++j) {
                   Path code_path = Child(p, "[" + std::to_string(j) + "]");
                   YAML::Mark code_mark = v[j].Mark().is_null() ? m : v[j].Mark();
                   rule.codes.push_back(String(v[j], code_path, code_mark));
                 }
               }},
              {"class", [&](const YAML::Node& v, const Path& p, const YAML::Mark& m) {
                 has_class = true;
                 FailureClass c = ClassName(String(v, p, m), p, m);
                 bool by_code = false;
                 for (FailureClass allowed : kCodeClasses) by_code = by_code || allowed == c;
                 if (!by_code) {
                   Fail(p, m,
                        "class \"" + std::string(ToString(c)) +
                            "\" is not triggered by error codes (expected one of: " +
                            CodeClassNames() + ")");
                 }
                 rule.failure_class = c;
               }}});
      if (!has_codes) Fail(Child(entry_path, "codes"), entry_mark, "missing (a rule needs codes)");
      if (!has_class)
        Fail(Child(entry_path, "class"), entry_mark, "missing (a rule needs a class)");
      user.push_back(std::move(rule));
    }
    rules.insert(rules.begin(), user.begin(), user.end());
  }

  void Workflow(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
                WorkflowConfig& w) const {
    Fields(
        node, path, mark,
        {
            {"severity", [&](auto& v, auto& p, auto& m) { w.severity = SeverityValue(v, p, m); }},
            {"objective", [&](auto& v, auto& p, auto& m) { w.objective = String(v, p, m); }},
            {"owner",
             [&](auto& v, auto& p, auto& m) {
               Fields(v, p, m,
                      {{"primary", [&](auto& ov, auto& op,
                                       auto& om) { w.owner_primary = String(ov, op, om); }},
                       {"backup", [&](auto& ov, auto& op, auto& om) {
                          w.owner_backup = String(ov, op, om);
                        }}});
             }},
            {"rollback_command",
             [&](auto& v, auto& p, auto& m) { w.rollback_command = String(v, p, m); }},
            {"blast_radius",
             [&](auto& v, auto& p, auto& m) {
               Fields(v, p, m,
                      {{"users",
                        [&](auto& bv, auto& bp, auto& bm) {
                          w.blast_radius_users = Int(bv, bp, bm, 0, kMaxInt);
                        }},
                       {"jobs", [&](auto& bv, auto& bp, auto& bm) {
                          w.blast_radius_jobs = Int(bv, bp, bm, 0, kMaxInt);
                        }}});
             }},
            {"recommended_actions",
             [&](auto& v, auto& p, auto& m) { Actions(v, p, m, w.recommended_actions); }},
            {"confidence_threshold",
             [&](auto& v, auto& p, auto& m) { w.confidence_threshold = Double(v, p, m, 0, 1); }},
            {"amount_threshold",
             [&](auto& v, auto& p, auto& m) { w.amount_threshold = Double(v, p, m, 0, kNoLimit); }},
            {"budget",
             [&](auto& v, auto& p, auto& m) {
               Fields(v, p, m,
                      {{"cost_usd",
                        [&](auto& bv, auto& bp, auto& bm) {
                          w.budget.cost_usd = Double(bv, bp, bm, 0, kNoLimit);
                        }},
                       {"tool_calls",
                        [&](auto& bv, auto& bp, auto& bm) {
                          w.budget.tool_calls = Int(bv, bp, bm, 0, kMaxInt);
                        }},
                       {"duration_s", [&](auto& bv, auto& bp, auto& bm) {
                          w.budget.duration_s = Int(bv, bp, bm, 1, kMaxInt);
                        }}});
             }},
            {"stall_timeout_s",
             [&](auto& v, auto& p, auto& m) { w.stall_timeout_s = Int(v, p, m, 1, kMaxInt); }},
            {"max_retries",
             [&](auto& v, auto& p, auto& m) { w.max_retries = Int(v, p, m, 0, kMaxInt); }},
            {"always_page", [&](auto& v, auto& p, auto& m) { w.always_page = Bool(v, p, m); }},
        });
  }

  void Workflows(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
                 std::map<std::string, WorkflowConfig, std::less<>>& workflows) const {
    Entries(node, path, mark,
            [&](const std::string& id, const YAML::Node& v, const Path& p, const YAML::Mark& m) {
              WorkflowConfig w;
              w.id = id;
              // An entry with nothing under it ("ledger-close:") is a known id with no settings.
              if (!v.IsNull()) Workflow(v, p, m, w);
              workflows[id] = std::move(w);
            });
  }

  void Sla(const YAML::Node& node, const Path& path, const YAML::Mark& mark,
           std::array<SlaBand, kSeverityCount>& sla) const {
    auto band = [this, &sla](Severity s) {
      return [this, b_ptr = &sla[static_cast<size_t>(s)]](const YAML::Node& v, const Path& p,
                                                          const YAML::Mark& m) {
        SlaBand& b = *b_ptr;
        Fields(v, p, m,
               {{"min_score",
                 [&](auto& bv, auto& bp, auto& bm) { b.min_score = Double(bv, bp, bm, 0, 100); }},
                {"first_response_s",
                 [&](auto& bv, auto& bp, auto& bm) {
                   b.first_response_s = Int(bv, bp, bm, 1, kMaxInt);
                 }},
                {"ttl_s",
                 [&](auto& bv, auto& bp, auto& bm) { b.ttl_s = Int(bv, bp, bm, 1, kMaxInt); }},
                {"escalation_route",
                 [&](auto& bv, auto& bp, auto& bm) { b.escalation_route = String(bv, bp, bm); }},
                {"decision_authority", [&](auto& bv, auto& bp, auto& bm) {
                   b.decision_authority = String(bv, bp, bm);
                 }}});
      };
    };
    Fields(node, path, mark,
           {{"P1", band(Severity::kP1)}, {"P2", band(Severity::kP2)}, {"P3", band(Severity::kP3)}});
  }

  std::string name_;
  std::vector<AppliedOverride> overrides_;
  std::vector<Path> created_paths_;
  PropertyCheck check_property_;
};

// Splits a --set key into tree segments. Everything after kafka.properties is one key (librdkafka
// property names contain dots); under workflows, an id already in the tree that contains dots is
// matched whole, otherwise the id is the next segment.
Path SplitOverrideKey(const std::string& key, const YAML::Node& root) {
  // `root` is const so a missing key yields an invalid node: check IsDefined() before use.
  Path parts;
  std::string_view rest = key;
  while (!rest.empty()) {
    if (parts == Path{"kafka", "properties"}) {
      parts.emplace_back(rest);
      break;
    }
    if (parts == Path{"workflows"} && root.IsMap() && root["workflows"].IsDefined() &&
        root["workflows"].IsMap()) {
      std::string best;
      for (const auto& kv : root["workflows"]) {
        const std::string& id = kv.first.Scalar();
        bool matches = rest == id || (rest.size() > id.size() && rest.substr(0, id.size()) == id &&
                                      rest[id.size()] == '.');
        if (matches && id.size() > best.size()) best = id;
      }
      if (!best.empty()) {
        parts.push_back(best);
        rest.remove_prefix(std::min(rest.size(), best.size() + 1));
        continue;
      }
    }
    size_t dot = rest.find('.');
    parts.emplace_back(rest.substr(0, dot));
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  }
  return parts;
}

// Refuses a key no config path can have; `flag` ("--set", "--set-env") starts the message.
void CheckOverrideKey(const std::string& key, const std::string& flag) {
  if (!IsValidUtf8(key)) throw ConfigError(flag + ":" + Printable(key) + ": not valid UTF-8");
  if (key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos) {
    throw ConfigError(flag + ":" + key + ": empty segment in key");
  }
}

// Puts `value` at `key` in the tree, creating maps on the way (their paths are added to
// *created). Returns the key's path.
Path SetAtKey(YAML::Node& root, const std::string& key, const std::string& flag,
              const YAML::Node& value, std::vector<Path>* created) {
  if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
  Path parts = SplitOverrideKey(key, root);
  YAML::Node parent = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = parent[parts[i]];
    if (!child.IsDefined() || child.IsNull()) {
      child = YAML::Node(YAML::NodeType::Map);
      created->emplace_back(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    } else if (!child.IsMap()) {
      Path prefix(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      throw ConfigError(flag + ":" + key + ": " + Dotted(prefix) + " is not a map");
    }
    parent.reset(child);
  }
  parent[parts.back()] = value;
  return parts;
}

// Applies one "dotted.key=value" (--set, the value is YAML) onto the tree. Returns the key's path.
Path ApplyOverride(YAML::Node& root, const std::string& assignment, std::vector<Path>* created) {
  size_t eq = assignment.find('=');
  std::string key = assignment.substr(0, eq);
  if (eq == std::string::npos || key.empty()) {
    // Without '=' the text could be a value typed by mistake (a secret): do not echo it.
    throw ConfigError("--set: expected key.path=value");
  }
  CheckOverrideKey(key, "--set");
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::ParserException& e) {
    // The value may be a secret: report yaml-cpp's reason only.
    throw ConfigError("--set:" + key + ": value is not valid YAML (" + e.msg +
                      "); quote it, e.g. key='\"text\"', or use --set-env");
  }
  // "&x pass" and "!x pass" would silently lose "&x " / "!x " (YAML anchor and tag syntax):
  // refuse, as for a comment below, rather than set a value other than the one typed.
  {
    std::istringstream in(assignment.substr(eq + 1));
    YAML::Parser parser(in);
    YamlScan scan;
    parser.HandleNextDocument(scan);
    if (scan.anchor_or_tag()) {
      throw ConfigError(
          "--set:" + key +
          ": value contains a YAML anchor (\"&\") or tag (\"!\"); quote it or use --set-env");
    }
  }
  // "pa ss #word" would silently lose " #word" to a YAML comment: refuse instead of truncating.
  std::string_view text = std::string_view(assignment).substr(eq + 1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  if (value.IsScalar() && value.Tag() == "?" && value.Scalar() != text &&
      text.find('#') != std::string_view::npos) {
    throw ConfigError("--set:" + key +
                      ": value contains a YAML comment (\" #\"); quote it or use --set-env");
  }
  return SetAtKey(root, key, "--set", value, created);
}

// Applies a --set-env override: the value is set as a quoted string would be (tag "!"), byte for
// byte, without YAML parsing. Returns the key's path.
Path ApplyLiteralOverride(YAML::Node& root, const ConfigOverride& o, std::vector<Path>* created) {
  if (o.text.empty()) throw ConfigError("--set-env: expected key.path=ENV_VAR");
  CheckOverrideKey(o.text, "--set-env");
  YAML::Node value(o.value);
  value.SetTag("!");
  return SetAtKey(root, o.text, "--set-env", value, created);
}

Config LoadTree(YAML::Node root, const std::string& name,
                const std::vector<ConfigOverride>& overrides, const PropertyCheck& check_property) {
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    throw ConfigError(name + ":" + std::to_string(root.Mark().line + 1) +
                      ": (document): expected a map of sections, got " + TypeName(root));
  }
  std::vector<AppliedOverride> applied;
  std::vector<Path> created_paths;
  for (const ConfigOverride& o : overrides) {
    Path path = o.literal ? ApplyLiteralOverride(root, o, &created_paths)
                          : ApplyOverride(root, o.text, &created_paths);
    applied.push_back({std::move(path), &o});
  }
  try {
    return Loader(name, std::move(applied), std::move(created_paths), check_property).Load(root);
  } catch (const YAML::Exception& e) {
    // Not expected (values are decoded without throwing), but keep the ConfigError contract.
    std::string where = e.mark.is_null() ? name : name + ":" + std::to_string(e.mark.line + 1);
    throw ConfigError(where + ": (yaml): " + e.msg);
  }
}

}  // namespace

Config LoadConfigFromString(const std::string& yaml, const std::string& name,
                            const std::vector<ConfigOverride>& overrides,
                            const PropertyCheck& check_property) {
  YAML::Node root;
  try {
    // A second document ("---") would be ignored by YAML::Load: one setting in it, or a whole
    // file appended to another, would silently not apply. Its start is reported instead.
    std::istringstream in(yaml);
    YAML::Parser parser(in);
    YamlScan scan;
    if (parser.HandleNextDocument(scan) && parser.HandleNextDocument(scan)) {
      throw ConfigError(name + ":" + std::to_string(scan.document_starts()[1].line + 1) +
                        ": (yaml): a second YAML document starts here; the config is one "
                        "document (remove the \"---\" and merge it into the first)");
    }
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ": (yaml): " + e.msg +
                      " (column " + std::to_string(e.mark.column + 1) + ")");
  }
  return LoadTree(root, name, overrides, check_property);
}

Config LoadConfig(const std::string& path, const std::vector<ConfigOverride>& overrides,
                  const PropertyCheck& check_property) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw ConfigError(path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  return LoadConfigFromString(text.str(), path, overrides, check_property);
}

}  // namespace handoffd
