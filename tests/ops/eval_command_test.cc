// `freshet eval` as a process on the census fixture: the table names every task and
// variant, --json holds one run per seed with both tasks' metrics; on the simulator
// with TWIN off and on; and bad flags are usage errors (exit 2) that say what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/util/subprocess.h"
#include "tests/util/shared_data.h"

namespace freshet::ops {
namespace {

const std::string kFixture =
    freshet::testing::SharedDataPath("census-income-kdd/census-income.data.first1891rows.gz");

TEST(EvalCommandTest, CensusFixtureTableAndJson) {
  SKIP_WITHOUT_DATA(kFixture);
  const std::string json = (std::filesystem::temp_directory_path() / ("freshet_eval_" + std::to_string(getpid()) + ".json")).string();
  const auto r = testing::RunShell(std::string(FRESHET_BINARY_PATH) + " eval --data census --data-path " + kFixture +
                                   " --family mmoe,omoe --seeds 2 --passes 2 --json " + json + " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"income", "never_married", "mmoe", "omoe", "expert diagnostics"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  std::ifstream in(json);
  std::stringstream text;
  text << in.rdbuf();
  const std::string j = text.str();
  std::filesystem::remove(json);
  EXPECT_NE(j.find("\"variant\":\"mmoe\""), std::string::npos) << j.substr(0, 400);
  EXPECT_NE(j.find("\"seed\":2"), std::string::npos);
  EXPECT_NE(j.find("\"task\":\"never_married\""), std::string::npos);
  EXPECT_NE(j.find("\"mean_curve\""), std::string::npos);
}

// The simulator needs no data files: a small prequential run with and without TWIN
// names every default task in both variants.
TEST(EvalCommandTest, SimulatorPrequentialWithAndWithoutTwin) {
  const auto r = testing::RunShell(std::string(FRESHET_BINARY_PATH) +
                                   " eval --data simulator --mode prequential --rows 3000 --test-rows 0 --twin both"
                                   " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"simulator: seed 1", "FAMILY_PLE ", "FAMILY_PLE+twin", "click", "follow", "play_time"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
}

TEST(EvalCommandTest, BadFlagsAreUsageErrors) {
  auto r = testing::RunShell(std::string(FRESHET_BINARY_PATH) + " eval --data nosuch 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--data must be synthetic, census, kuairand or simulator"), std::string::npos) << r.output;
  r = testing::RunShell(std::string(FRESHET_BINARY_PATH) + " eval --data census --family moe 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown variant 'moe'"), std::string::npos) << r.output;
  r = testing::RunShell(std::string(FRESHET_BINARY_PATH) + " eval --data census --data-path /nonexistent.gz 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("/nonexistent.gz"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace freshet::ops
