#include "processor/json_writer.h"

#include "processor/json_text.h"
#include "processor/time_format.h"

namespace handoffd {
namespace {
constexpr int64_t kMinTimeMs = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr int64_t kMaxTimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z
}  // namespace

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
  } else if (need_comma_) {
    out_->push_back(',');
  }
}

void JsonWriter::BeginObject() {
  BeforeValue();
  out_->push_back('{');
  need_comma_ = false;
}

void JsonWriter::EndObject() {
  out_->push_back('}');
  need_comma_ = true;
}

void JsonWriter::BeginArray() {
  BeforeValue();
  out_->push_back('[');
  need_comma_ = false;
}

void JsonWriter::EndArray() {
  out_->push_back(']');
  need_comma_ = true;
}

void JsonWriter::Key(std::string_view key) {
  if (need_comma_) out_->push_back(',');
  AppendJsonString(out_, key);
  out_->push_back(':');
  after_key_ = true;
}

void JsonWriter::String(std::string_view s) {
  BeforeValue();
  AppendJsonString(out_, s);
  need_comma_ = true;
}

void JsonWriter::Int(int64_t v) {
  BeforeValue();
  AppendJsonInt(out_, v);
  need_comma_ = true;
}

void JsonWriter::Double(double v) {
  BeforeValue();
  AppendJsonDouble(out_, v);
  need_comma_ = true;
}

void JsonWriter::Tenths(int64_t tenths) {
  BeforeValue();
  if (tenths < 0) {
    out_->push_back('-');
    tenths = -tenths;
  }
  AppendJsonInt(out_, tenths / 10);
  out_->push_back('.');
  out_->push_back(static_cast<char>('0' + tenths % 10));
  need_comma_ = true;
}

void JsonWriter::Bool(bool v) {
  BeforeValue();
  out_->append(v ? "true" : "false");
  need_comma_ = true;
}

void JsonWriter::Null() {
  BeforeValue();
  out_->append("null");
  need_comma_ = true;
}

void JsonWriter::Raw(std::string_view json) {
  BeforeValue();
  out_->append(json);
  need_comma_ = true;
}

void JsonWriter::Time(int64_t ms) {
  BeforeValue();
  ms = ms < kMinTimeMs ? kMinTimeMs : (ms > kMaxTimeMs ? kMaxTimeMs : ms);
  char buf[kRfc3339MsLength + 2];
  buf[0] = '"';
  size_t n = FormatRfc3339Ms(ms, buf + 1);
  buf[n + 1] = '"';
  out_->append(buf, n + 2);
  need_comma_ = true;
}

void JsonWriter::StringOrNull(const std::optional<std::string_view>& s) {
  if (s) {
    String(*s);
  } else {
    Null();
  }
}

void JsonWriter::IntOrNull(const std::optional<int64_t>& v) {
  if (v) {
    Int(*v);
  } else {
    Null();
  }
}

void JsonWriter::RawOrNull(const std::optional<std::string_view>& json) {
  if (json) {
    Raw(*json);
  } else {
    Null();
  }
}

}  // namespace handoffd
