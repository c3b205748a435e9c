#include "ops/config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace freshet::ops {
namespace {

TEST(ConfigTest, DefaultsValidateAndAreComplete) {
  FreshetConfig c = DefaultConfig();
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  EXPECT_EQ(c.kafka().partitions(), 4);
  EXPECT_EQ(c.admin().learner_port(), 9402);
  EXPECT_EQ(c.publisher().publish_interval_ms(), 1000);
  ASSERT_EQ(c.tasks_size(), 8);
  EXPECT_EQ(c.tasks(0).name(), "click");
  EXPECT_EQ(c.tasks(2).requires_positive(), "click");
  EXPECT_EQ(c.tasks(7).type(), TASK_REGRESSION);
  EXPECT_GE(c.simulator().label_delays_size(), 9);
  // Every singular field is explicitly present once defaults are applied, so the
  // printed config shows every value an operator can change.
  std::string text = ConfigToText(c);
  EXPECT_NE(text.find("session_timeout_ms: 6000"), std::string::npos);
  EXPECT_NE(text.find("allowed_lateness_ms: 5000"), std::string::npos);
  EXPECT_NE(text.find("batch_size: 512"), std::string::npos);
}

TEST(ConfigTest, PrintedDefaultsParseBackIdentically) {
  FreshetConfig c = DefaultConfig();
  auto parsed = ParseConfigText(ConfigToText(c));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), c.SerializeAsString());
}

TEST(ConfigTest, FileValuesOverrideDefaults) {
  auto c = ParseConfigText("kafka { partitions: 8 } simulator { seed: 7 }");
  ASSERT_TRUE(c.ok());
  ApplyDefaults(&*c);
  EXPECT_EQ(c->kafka().partitions(), 8);
  EXPECT_EQ(c->kafka().embedded_brokers(), 3);
  EXPECT_EQ(c->simulator().seed(), 7u);
  EXPECT_TRUE(Validate(*c).ok());
}

// The simulator layout gets online learning rates (ops/config.cc DefaultOnlineRates);
// a rate the file sets, or a config with its own slots, keeps the proto defaults.
TEST(ConfigTest, SimulatorLayoutGetsOnlineRatesUnlessSet) {
  FreshetConfig d = DefaultConfig();
  EXPECT_FLOAT_EQ(d.learner().dense_optimizer().learning_rate(), 0.01f);
  EXPECT_FLOAT_EQ(d.learner().sparse_optimizer().learning_rate(), 0.3f);
  auto set = ParseConfigText("learner { dense_optimizer { learning_rate: 0.002 } }");
  ASSERT_TRUE(set.ok());
  ApplyDefaults(&*set);
  EXPECT_FLOAT_EQ(set->learner().dense_optimizer().learning_rate(), 0.002f);
  EXPECT_FLOAT_EQ(set->learner().sparse_optimizer().learning_rate(), 0.3f);
  auto own = ParseConfigText("learner { model { dense_slots { slot: 0 } } }");
  ASSERT_TRUE(own.ok());
  ApplyDefaults(&*own);
  EXPECT_FLOAT_EQ(own->learner().dense_optimizer().learning_rate(), 1e-3f);
  EXPECT_FLOAT_EQ(own->learner().sparse_optimizer().learning_rate(), 0.05f);
}

struct BadCase {
  const char* text;
  const char* expect;  // substring of the error: field path and value
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, ErrorNamesFieldAndValue) {
  auto c = ParseConfigText(GetParam().text);
  ASSERT_TRUE(c.ok()) << c.status();
  ApplyDefaults(&*c);
  Status s = Validate(*c);
  ASSERT_FALSE(s.ok()) << GetParam().text;
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(GetParam().expect), std::string::npos) << s.message();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadConfigTest,
    ::testing::Values(
        BadCase{"kafka { partitions: 0 }", "kafka.partitions = 0: must be in [1, 1024]"},
        BadCase{"kafka { samples_topic: \"bad topic\" }", "kafka.samples_topic = \"bad topic\""},
        BadCase{"kafka { samples_topic: \"labels\" }", "must differ"},
        BadCase{"admin { learner_port: 70000 }", "admin.learner_port = 70000"},
        BadCase{"simulator { base_ctr: 1.5 }", "simulator.base_ctr = 1.5"},
        BadCase{"simulator { label_delays { kind: LABEL_CLICK median_ms: -1 } }", "simulator.label_delays[0].median_ms = -1"},
        BadCase{"tasks { name: \"Click\" label_kinds: LABEL_CLICK }", "tasks[0].name = \"Click\""},
        BadCase{"tasks { name: \"a\" label_kinds: LABEL_CLICK } tasks { name: \"a\" label_kinds: LABEL_LIKE }",
                "tasks[1].name = \"a\": duplicate"},
        BadCase{"tasks { name: \"a\" }", "tasks[0].label_kinds = []"},
        BadCase{"tasks { name: \"a\" label_kinds: LABEL_CLICK requires_positive: \"b\" }",
                "tasks[0].requires_positive = \"b\": names no configured task"},
        BadCase{"tasks { name: \"a\" label_kinds: LABEL_CLICK home_group: \"x\" }", "tasks[0].home_group = \"x\""},
        BadCase{"tasks { name: \"a\" label_kinds: LABEL_CLICK window_ms: 0 }", "tasks[0].window_ms = 0"},
        BadCase{"learner { batch_size: 0 }", "learner.batch_size = 0"},
        BadCase{"publisher { publish_interval_ms: 1 }", "publisher.publish_interval_ms = 1"},
        BadCase{"serving { behaviour_cache_dir: \"/d\" } learner { model { twin { enabled: false } } }",
                "serving.behaviour_cache_dir = \"/d\": needs learner.model.twin.enabled"},
        BadCase{"log_level: \"loud\"", "log_level = \"loud\""}));

TEST(ConfigTest, SyntaxErrorNamesFileLineAndColumn) {
  std::string path = ::testing::TempDir() + "/bad.pbtxt";
  {
    std::ofstream out(path);
    out << "kafka {\n  partitions: 4\n  no_such_field: 1\n}\n";
  }
  auto c = LoadEffectiveConfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("line 3"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("no_such_field"), std::string::npos) << c.status();
}

TEST(ConfigTest, MissingFileSaysWhatToCheck) {
  auto c = LoadEffectiveConfig("/nonexistent/freshet.pbtxt");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("--config"), std::string::npos);
}

}  // namespace
}  // namespace freshet::ops
