// ServingFleet: fork/exec of `freshet serve` children, their port lines, and an
// ordered stop (see serving_fleet.h).
#include "ops/serving_fleet.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/logging.h"
#include "ops/config.h"
#include "publisher/frame.h"

namespace freshet::ops {
namespace {

constexpr int kReadyTimeoutMs = 20000;
constexpr int kStopTimeoutMs = 10000;

// Reads one '\n'-terminated line from `fd` within `timeout_ms`; "" on EOF/timeout.
std::string ReadLine(int fd, int timeout_ms) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) continue;
    char c;
    if (read(fd, &c, 1) != 1) return "";
    if (c == '\n') return line;
    line += c;
  }
  return "";
}

// Waits for `pid` up to timeout_ms; true when it exited (and was reaped).
bool WaitExit(pid_t pid, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || r < 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

StatusOr<std::unique_ptr<ServingFleet>> ServingFleet::Start(const FreshetConfig& config, const std::string& dir,
                                                            int count, const std::string& binary_path) {
  std::unique_ptr<ServingFleet> fleet(new ServingFleet());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError("cannot create " + dir + ": " + ec.message());
  fleet->key_file_ = dir + "/push.key";
  ASSIGN_OR_RETURN(std::string key, publisher::GenerateHmacKey());
  RETURN_IF_ERROR(publisher::WriteHmacKey(fleet->key_file_, key));
  FreshetConfig serving = config;
  serving.mutable_publisher()->set_hmac_key_file(fleet->key_file_);
  // Replicas read TWIN histories from the learner's store beside `dir` (run_command's
  // layout: <data>/serving and <data>/learner), as read-only secondaries.
  if (config.learner().model().twin().enabled() && config.serving().behaviour_cache_dir().empty())
    serving.mutable_serving()->set_behaviour_cache_dir(
        (std::filesystem::path(dir).parent_path() / "learner").string());
  const std::string config_path = dir + "/serving.pbtxt";
  {
    std::ofstream out(config_path);
    out << ConfigToText(serving);
    if (!out) return InternalError("cannot write " + config_path);
  }
  const std::string binary =
      binary_path.empty() ? std::filesystem::read_symlink("/proc/self/exe", ec).string() : binary_path;
  if (ec) return InternalError("cannot find this program's path (/proc/self/exe): " + ec.message());
  const int push_base = config.serving().push_base_port(), admin_base = config.admin().serving_base_port();
  for (int i = 0; i < count; ++i) {
    Status s = fleet->Launch(binary, config_path, i, push_base == 0 ? 0 : push_base + i,
                             admin_base == 0 ? 0 : admin_base + i);
    if (!s.ok()) return s;  // the destructor stops the ones already running
  }
  return fleet;
}

Status ServingFleet::Launch(const std::string& binary, const std::string& config_path, int index, int push_port,
                            int admin_port) {
  Replica r;
  r.index = index;
  r.log_path = std::filesystem::path(config_path).parent_path().string() + "/serving-" + std::to_string(index) + ".log";
  std::vector<std::string> args = {binary, "serve", "--config", config_path, "--replica", std::to_string(index),
                                   "--push-port", std::to_string(push_port), "--admin-port", std::to_string(admin_port)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = open(r.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return InternalError("cannot open " + r.log_path);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    close(log_fd);
    return InternalError("pipe() failed starting serving replica " + std::to_string(index));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Child (async-signal-safe calls only): own process group, SIGTERM when run dies,
    // default signal mask, stdout to the pipe, stderr to the log.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(fds[1], STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  close(log_fd);
  if (pid < 0) {
    close(fds[0]);
    return InternalError("fork() failed starting serving replica " + std::to_string(index));
  }
  r.pid = pid;
  r.stdout_fd = fds[0];
  replicas_.push_back(r);
  // "freshet serve: replica=I push_port=P admin=URL"
  const std::string line = ReadLine(r.stdout_fd, kReadyTimeoutMs);
  const size_t p = line.find("push_port="), a = line.find("admin=");
  if (line.rfind("freshet serve:", 0) != 0 || p == std::string::npos || a == std::string::npos)
    return UnavailableError("serving replica " + std::to_string(index) + " did not start (see " + r.log_path + ")");
  replicas_.back().push_port = std::atoi(line.c_str() + p + 10);
  replicas_.back().admin_url = line.substr(a + 6);
  LOG_INFO("serving_replica_started").Kv("replica", index).Kv("pid", pid).Kv("push_port", replicas_.back().push_port)
      .Kv("admin", replicas_.back().admin_url).Kv("log", r.log_path);
  return Status::Ok();
}

std::vector<std::string> ServingFleet::push_addresses() const {
  std::vector<std::string> out;
  for (const Replica& r : replicas_) out.push_back("127.0.0.1:" + std::to_string(r.push_port));
  return out;
}

ServingFleet::~ServingFleet() { Stop(); }

void ServingFleet::Stop() {
  while (!replicas_.empty()) {
    Replica& r = replicas_.back();
    kill(r.pid, SIGTERM);
    const bool exited = WaitExit(r.pid, kStopTimeoutMs);
    if (!exited) {
      LOG_WARNING("serving_replica_kill").Kv("replica", r.index).Kv("pid", r.pid).Kv("after_ms", kStopTimeoutMs);
      kill(r.pid, SIGKILL);
      WaitExit(r.pid, kStopTimeoutMs);
    }
    close(r.stdout_fd);
    LOG_INFO("serving_replica_stopped").Kv("replica", r.index).Kv("clean", exited);
    replicas_.pop_back();
  }
}

}  // namespace freshet::ops
