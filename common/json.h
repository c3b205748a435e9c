// JsonWriter: builds a JSON document by appending, for /status endpoints, benchmark
// result lines and the dashboard's data feed. Non-finite numbers are written as null
// (JSON has no NaN). Not a parser.
//
//   JsonWriter w;
//   w.BeginObject().Key("version").Int(7).Key("tasks").BeginArray().String("click").EndArray().EndObject();
//   w.str();  // {"version":7,"tasks":["click"]}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace freshet {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Inserts already-serialized JSON as one value.
  JsonWriter& Raw(std::string_view json);

  const std::string& str() const { return out_; }

  static std::string Quote(std::string_view s);

 private:
  void BeforeValue();

  std::string out_;
  // Per open container: whether a value has been written (to place commas).
  std::vector<bool> has_value_;
  bool after_key_ = false;
};

}  // namespace freshet
