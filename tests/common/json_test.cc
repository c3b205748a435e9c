#include "common/json.h"

#include <gtest/gtest.h>

#include <limits>

namespace freshet {
namespace {

TEST(JsonWriterTest, NestedDocument) {
  JsonWriter w;
  w.BeginObject()
      .Key("version").Int(7)
      .Key("tasks").BeginArray().String("click").String("li\"ke").EndArray()
      .Key("auc").Double(0.75)
      .Key("bad").Double(std::numeric_limits<double>::quiet_NaN())
      .Key("ok").Bool(true)
      .Key("inner").BeginObject().Key("x").Null().EndObject()
      .EndObject();
  EXPECT_EQ(w.str(), R"({"version":7,"tasks":["click","li\"ke"],"auc":0.75,"bad":null,"ok":true,"inner":{"x":null}})");
}

TEST(JsonWriterTest, ControlCharactersEscaped) {
  EXPECT_EQ(JsonWriter::Quote(std::string("a\nb\x01", 4)), "\"a\\nb\\u0001\"");
}

}  // namespace
}  // namespace freshet
