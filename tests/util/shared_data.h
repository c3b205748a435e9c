// Where tests find the shared public data sets (KuaiRand, census): $FRESHET_DATA_DIR
// when set, else ../shared/data beside the source tree (the layout DEVELOPERS.md
// gives). A test that needs a file calls SKIP_WITHOUT_DATA first, so a checkout
// without the data skips with the path it looked at instead of failing.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace freshet::testing {

inline std::string SharedDataPath(const std::string& relative) {
  const char* dir = std::getenv("FRESHET_DATA_DIR");
  return (dir != nullptr && *dir != '\0' ? std::string(dir) : std::string(FRESHET_SOURCE_DIR "/../shared/data")) +
         "/" + relative;
}

}  // namespace freshet::testing

#define SKIP_WITHOUT_DATA(path)                                                              \
  if (!std::filesystem::exists(path))                                                        \
  GTEST_SKIP() << "data set not found at " << (path) << " (set FRESHET_DATA_DIR to the folder " \
               "holding kuairand-pure/ and census-income-kdd/)"
