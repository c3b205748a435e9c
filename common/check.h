// CHECK macros: for bugs, never for bad input (bad input gets a Status). A failed
// CHECK prints file:line, the condition and any streamed context, then aborts.
//
//   CHECK(rows > 0) << "slot=" << slot;
//   CHECK_EQ(a.cols(), b.rows());
//   CHECK_OK(store.Open(path));
#pragma once

#include <sstream>

#include "common/status.h"

namespace freshet::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Makes `CHECK(x) << ...;` a single expression whose streaming is skipped on success.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace freshet::internal

#define CHECK(condition)                        \
  (condition) ? (void)0                         \
              : ::freshet::internal::Voidify() & \
                    ::freshet::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define FRESHET_CHECK_OP(a, op, b) \
  CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define CHECK_EQ(a, b) FRESHET_CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) FRESHET_CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) FRESHET_CHECK_OP(a, <, b)
#define CHECK_LE(a, b) FRESHET_CHECK_OP(a, <=, b)
#define CHECK_GT(a, b) FRESHET_CHECK_OP(a, >, b)
#define CHECK_GE(a, b) FRESHET_CHECK_OP(a, >=, b)

#define CHECK_OK(expr)                                     \
  do {                                                     \
    ::freshet::Status freshet_check_status_ = (expr);      \
    CHECK(freshet_check_status_.ok()) << freshet_check_status_; \
  } while (0)

#ifdef NDEBUG
#define DCHECK(condition) \
  while (false) CHECK(condition)
#else
#define DCHECK(condition) CHECK(condition)
#endif
