// CHECK failure reporting; see check.h.
#include "common/check.h"

#include <cstdio>
#include <cstdlib>

namespace freshet::internal {

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << "CHECK failed at " << file << ":" << line << ": " << condition << " ";
}

CheckFailure::~CheckFailure() {
  std::fprintf(stderr, "%s\n", stream_.str().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace freshet::internal
