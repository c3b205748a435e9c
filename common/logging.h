// Structured key=value logging. One line per event, written to stderr when the
// LogLine goes out of scope:
//
//   LOG_INFO("admin_started").Kv("addr", addr).Kv("port", port);
//   -> ts=2026-11-23T03:47:00.123Z level=info event=admin_started addr=127.0.0.1 port=9402
//
// Values containing spaces, quotes or '=' are quoted. Nothing is logged per sample;
// per-batch warnings go through RateLimiter. Thread-safe: lines never interleave.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace freshet {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below `level` are dropped. Default: kInfo.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
// Parses "debug", "info", "warning" or "error"; returns false on anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);

// Replaces the writer (stderr by default); tests use it to capture lines. Pass an
// empty function to restore stderr.
void SetLogSinkForTest(std::function<void(const std::string&)> sink);

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Kv(std::string_view key, std::string_view value);
  LogLine& Kv(std::string_view key, const char* value) { return Kv(key, std::string_view(value)); }
  LogLine& Kv(std::string_view key, const std::string& value) { return Kv(key, std::string_view(value)); }
  LogLine& Kv(std::string_view key, bool value) { return Kv(key, value ? "true" : "false"); }
  template <typename T>
  LogLine& Kv(std::string_view key, const T& value) {
    if (!enabled_) return *this;
    std::ostringstream os;
    os << value;
    return Kv(key, std::string_view(os.str()));
  }

 private:
  bool enabled_;
  std::string line_;
};

// Allows one event per interval and counts the ones it suppressed, for warnings that
// could otherwise fire once per batch.
class RateLimiter {
 public:
  explicit RateLimiter(int64_t interval_ms) : interval_ms_(interval_ms) {}
  // True when the caller should log now; `suppressed` then holds how many calls were
  // refused since the last allowed one.
  bool Allow(int64_t now_ms, int64_t* suppressed);

 private:
  const int64_t interval_ms_;
  std::atomic<int64_t> next_ms_{0};
  std::atomic<int64_t> suppressed_{0};
};

}  // namespace freshet

#define LOG_DEBUG(event) ::freshet::LogLine(::freshet::LogLevel::kDebug, event)
#define LOG_INFO(event) ::freshet::LogLine(::freshet::LogLevel::kInfo, event)
#define LOG_WARNING(event) ::freshet::LogLine(::freshet::LogLevel::kWarning, event)
#define LOG_ERROR(event) ::freshet::LogLine(::freshet::LogLevel::kError, event)
