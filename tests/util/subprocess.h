// Subprocess: runs a program as a child process for integration tests (daemons,
// kcat, promtool), reads its stdout line by line with a timeout, and stops it with a
// signal. The child is killed (SIGKILL) on destruction if still running.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace freshet::testing {

class Subprocess {
 public:
  // argv[0] is the program path (PATH is searched). stderr is inherited unless
  // `merge_stderr`, in which case it goes to the same pipe as stdout.
  explicit Subprocess(const std::vector<std::string>& argv, bool merge_stderr = false);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Next stdout line (without '\n'), or nullopt on EOF or timeout.
  std::optional<std::string> ReadLine(int timeout_ms);
  // Reads lines until one starts with `prefix`; returns it, or nullopt.
  std::optional<std::string> WaitForLinePrefix(const std::string& prefix, int timeout_ms);
  // Everything read so far, for failure messages.
  const std::string& transcript() const { return transcript_; }

  void Signal(int sig);
  // Waits for exit; returns the exit code (128+signal if killed), or nullopt on timeout.
  std::optional<int> Wait(int timeout_ms);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  std::string transcript_;
  std::optional<int> exit_code_;
};

// Runs a shell command to completion; returns exit code and combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunShell(const std::string& command);

}  // namespace freshet::testing
