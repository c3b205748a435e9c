// Serving under load: POST /v1/score requests per second and p50/p99 latency on
// loopback against one in-process serving replica (publisher/serving_node.h) on the
// reference model, while a publisher thread trains a batch and pushes a DELTA every
// second (so scoring runs across version swaps).
//
//   build/bench/bench_serve [--config configs/reference.pbtxt] [--seconds 5] [--items 100]
//                           [--connections 4]
//
// Load comes from `wrk` (Debian package, ops/install-deps.sh) when it is on PATH,
// else from a built-in client (one thread per connection, keep-alive-less HttpCall).
// Last line: one JSON object (docs/benchmarks.md).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <google/protobuf/text_format.h>

#include "bench/bench_util.h"
#include "bench/synthetic_batch.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/logging.h"
#include "learner/cpu/trainer.h"
#include "publisher/model_update.h"
#include "publisher/push_connection.h"
#include "publisher/serving_node.h"

namespace {

using namespace freshet;
using bench::Seconds;
using bench::Steady;

// User features: the first half of the slots; each item: the second half.
publisher::ScoreRequest MakeRequest(const ModelConfig& m, int items) {
  cpu::Rng rng(99);
  publisher::ScoreRequest r;
  r.user_id = 7;
  auto fill = [&](publisher::ScoreFeatures* f, bool user) {
    for (int s = 0; s < m.sparse_slots_size(); ++s)
      if ((s < m.sparse_slots_size() / 2) == user) f->sparse[m.sparse_slots(s).slot()] = {rng.Next() % 1000};
    for (int s = 0; s < m.dense_slots_size(); ++s)
      if ((s < m.dense_slots_size() / 2) == user)
        f->dense[m.dense_slots(s).slot()] = std::vector<float>(m.dense_slots(s).width(), 0.5f);
  };
  fill(&r.user, true);
  r.items.resize(items);
  for (int i = 0; i < items; ++i) {
    r.items[i].item_id = static_cast<uint64_t>(i);
    fill(&r.items[i].features, false);
  }
  return r;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Runs a shell command; returns (exit code, stdout+stderr).
std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, out};
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

double WrkMs(const std::string& out, const std::string& label) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("\\s" + label + "\\s+([0-9.]+)(us|ms|s)"))) return -1;
  const double v = std::stod(m[1]);
  return m[2] == "us" ? v / 1e3 : m[2] == "s" ? v * 1e3 : v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "configs/reference.pbtxt";
  int seconds = 5, items = 100, connections = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config_path = argv[i + 1];
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--items")) items = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--connections")) connections = std::atoi(argv[i + 1]);
  }
  SetMinLogLevel(LogLevel::kWarning);
  std::ifstream in(config_path);
  std::stringstream text;
  text << in.rdbuf();
  FreshetConfig config;
  if (!in || !google::protobuf::TextFormat::ParseFromString(text.str(), &config)) {
    std::fprintf(stderr, "bench_serve: cannot read %s (run from the repository root or pass --config)\n",
                 config_path.c_str());
    return 1;
  }
  const std::vector<TaskConfig> tasks(config.tasks().begin(), config.tasks().end());
  const ModelConfig& model = config.learner().model();
  auto trainer = cpu::Trainer<float>::Create(config.learner(), tasks);
  if (!trainer.ok()) return bench::Fail("bench_serve", trainer.status());
  const int batch = std::min(256, config.learner().batch_size());
  uint64_t seed = 1;
  for (int i = 0; i < 10; ++i)
    (void)(*trainer)->Train(bench::SyntheticBatch(model, static_cast<int>(tasks.size()), batch, seed++), 0);

  const std::string key(32, 'k');
  config.mutable_admin()->set_serving_base_port(0);
  config.mutable_serving()->set_push_base_port(0);
  auto node = publisher::ServingNode::Start(config, 0, key, {});
  if (!node.ok()) return bench::Fail("bench_serve", node.status());
  auto conn = publisher::PushConnection::Connect("127.0.0.1", (*node)->push_port(), key, 30000);
  if (!conn.ok()) return bench::Fail("bench_serve", conn.status());
  ModelManifest manifest;
  manifest.set_version(1);
  auto push = [&](const ModelUpdate& u, publisher::FrameType type, uint64_t version, uint64_t base) -> Status {
    ASSIGN_OR_RETURN(publisher::Frame reply, (*conn)->Exchange(publisher::EncodeFrame(
                                                 {type, version, base}, u.SerializeAsString(), key)));
    if (reply.header.type != publisher::FrameType::kAck) return InternalError("replica answered " + reply.payload);
    return Status::Ok();
  };
  if (Status s = push(publisher::MakeFullUpdate((*trainer)->model(), manifest), publisher::FrameType::kFull, 1, 0);
      !s.ok())
    return bench::Fail("bench_serve", s);

  // The publisher: one training batch and one DELTA per second.
  std::atomic<bool> stop{false};
  std::atomic<int> deltas{0};
  std::vector<double> apply_ms;
  std::thread publisher_thread([&] {
    uint64_t version = 1;
    while (!stop.load()) {
      const auto tick = Steady::now();
      Batch b = bench::SyntheticBatch(model, static_cast<int>(tasks.size()), batch, seed++);
      publisher::DeltaContent d;
      for (size_t s = 0; s < b.sparse.size(); ++s)
        for (uint64_t id : b.sparse[s].ids) d.touched.push_back({static_cast<int32_t>(s), id});
      (void)(*trainer)->Train(b, 0);
      ModelManifest m;
      m.set_version(version + 1);
      m.set_base_version(version);
      const auto t0 = Steady::now();
      if (push(publisher::MakeDeltaUpdate((*trainer)->model(), m, d), publisher::FrameType::kDelta, version + 1,
               version)
              .ok()) {
        apply_ms.push_back(Seconds(t0) * 1e3);
        ++version;
        ++deltas;
      }
      while (!stop.load() && Seconds(tick) < 1.0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });

  const std::string body = publisher::ScoreRequestToJson(MakeRequest(model, items));
  const int port = (*node)->admin_port();
  double rps = 0, p50 = 0, p99 = 0;
  std::string load = "builtin";
  if (Shell("command -v wrk >/dev/null").first == 0) {
    load = "wrk";
    const std::string script = "/tmp/freshet_bench_serve_" + std::to_string(::getpid()) + ".lua";
    std::ofstream(script) << "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
                          << "wrk.body = [[" << body << "]]\n";
    const auto [code, output] = Shell("wrk -t1 -c" + std::to_string(connections) + " -d" + std::to_string(seconds) +
                                     "s --latency -s " + script + " http://127.0.0.1:" + std::to_string(port) +
                                     "/v1/score");
    std::remove(script.c_str());
    std::fputs(output.c_str(), stdout);
    std::smatch m;
    if (code != 0) return bench::Fail("bench_serve", InternalError("wrk failed"));
    if (std::regex_search(output, m, std::regex("Requests/sec:\\s+([0-9.]+)"))) rps = std::stod(m[1]);
    p50 = WrkMs(output, "50%");
    p99 = WrkMs(output, "99%");
    if (output.find("Non-2xx") != std::string::npos) return bench::Fail("bench_serve", InternalError("non-2xx replies"));
  } else {
    std::vector<std::vector<double>> lat(connections);
    std::atomic<int> errors{0};
    const auto start = Steady::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < connections; ++c)
      clients.emplace_back([&, c] {
        while (Seconds(start) < seconds) {
          const auto t0 = Steady::now();
          auto res = HttpCall("POST", "127.0.0.1", port, "/v1/score", body, {{"Content-Type", "application/json"}});
          if (!res.ok() || res->status != 200) ++errors;
          lat[c].push_back(Seconds(t0) * 1e3);
        }
      });
    for (auto& t : clients) t.join();
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    rps = static_cast<double>(all.size()) / Seconds(start);
    p50 = Quantile(all, 0.5);
    p99 = Quantile(all, 0.99);
    if (errors.load() > 0) return bench::Fail("bench_serve", InternalError("failed score requests"));
  }
  stop = true;
  publisher_thread.join();
  (*node)->Stop();

  std::printf("serve: %.0f requests/s (%d items each, %.0f items/s), p50 %.2f ms, p99 %.2f ms; %d deltas applied "
              "(median push+apply %.1f ms), load from %s, %d connections\n",
              rps, items, rps * items, p50, p99, deltas.load(), Quantile(apply_ms, 0.5), load.c_str(), connections);
  JsonWriter w;
  w.BeginObject().Key("bench").String("serve").Key("metric").String("score_requests_per_s").Key("value").Double(rps);
  w.Key("unit").String("req/s").Key("p50_ms").Double(p50).Key("p99_ms").Double(p99).Key("items_per_request").Int(items);
  w.Key("deltas_applied").Int(deltas.load()).Key("delta_apply_ms_p50").Double(Quantile(apply_ms, 0.5));
  w.Key("load").String(load).Key("connections").Int(connections).EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}
