// The production-layout files: configs/multiprocess.pbtxt passes `freshet config
// --validate`, and the systemd units in ops/systemd/ (with the demo drop-ins) pass
// `systemd-analyze verify` once pointed at the built binary (skipped with a message
// when systemd-analyze is absent).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/util/subprocess.h"

namespace freshet {
namespace {

namespace fs = std::filesystem;
using testing::RunShell;

const std::string kSource = FRESHET_SOURCE_DIR;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DeploymentFilesTest, MultiprocessConfigValidates) {
  auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " config --validate " + kSource + "/configs/multiprocess.pbtxt 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(": ok"), std::string::npos) << r.output;
  // It names a real cluster: the daemons refuse to start without one.
  EXPECT_NE(ReadFile(kSource + "/configs/multiprocess.pbtxt").find("bootstrap_servers: \""), std::string::npos);
}

TEST(DeploymentFilesTest, SystemdUnitsVerify) {
  if (RunShell("command -v systemd-analyze >/dev/null").exit_code != 0)
    GTEST_SKIP() << "systemd-analyze is not installed; skipping the unit file check";
  // Copies with the binary path pointing at this build, so verify can check it.
  const fs::path dir = fs::path(::testing::TempDir()) / "freshet_units";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto install = [&](const fs::path& from, const fs::path& to) {
    std::string text = ReadFile(from);
    text = std::regex_replace(text, std::regex("/usr/local/bin/freshet"), FRESHET_BINARY_PATH);
    fs::create_directories(to.parent_path());
    std::ofstream(to) << text;
  };
  std::string units;
  for (const auto& e : fs::directory_iterator(kSource + "/ops/systemd")) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".service") || name.ends_with(".target")) {
      install(e.path(), dir / name);
      units += " " + name;
    }
  }
  ASSERT_NE(units.find("freshet-serve@.service"), std::string::npos) << units;
  install(dir / "freshet-serve@.service", dir / "freshet-serve@0.service");
  for (const char* daemon : {"ingest", "learn"})
    install(kSource + "/ops/systemd/demo-kafka-" + daemon + ".conf",
            dir / ("freshet-" + std::string(daemon) + ".service.d") / "demo-kafka.conf");
  auto r = RunShell("cd " + dir.string() + " && systemd-analyze verify --man=no" + units + " freshet-serve@0.service 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("freshet"), std::string::npos) << "systemd-analyze complained: " << r.output;
}

TEST(DeploymentFilesTest, UnitsRunSubcommandsTheBinaryHas) {
  for (const char* unit : {"freshet-ingest.service", "freshet-learn.service", "freshet-kafka.service"}) {
    const std::string text = ReadFile(kSource + "/ops/systemd/" + unit);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, std::regex("/usr/local/bin/freshet (\\w+) --config"))) << unit;
    auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " --help");
    EXPECT_NE(r.output.find("  " + m[1].str() + " "), std::string::npos) << unit << " runs `freshet " << m[1] << "`";
  }
}

}  // namespace
}  // namespace freshet
