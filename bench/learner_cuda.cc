// The CUDA side of bench_learner; see learner_cuda.h. Work counts:
//
//   FLOPs/sample  = 6 · Σ (weight matrix in × out)      forward 2·MACs, backward 4·MACs
//   bytes/sample ≥ input   ids (8 B each) + offsets (4 B) + dense (4 B·D) + labels,
//                          masks, weights (3 · 4 B · T)
//                + sparse  per distinct row touched in a step: read w (dim), then
//                          Adagrad reads and writes w and its state: 5 · 4 B · dim, ÷ B
//                + dense   per parameter per step: write g; Adam reads w, g, m, v and
//                          writes w, m, v: 8 · 4 B, ÷ B
// Activations are left out: the lower bound assumes they never leave the chip, which
// no implementation achieves, so achieved bytes/s against it is an under-estimate of
// the traffic and a fair "how far from the memory roofline" figure.
#include "bench/learner_cuda.h"

#include <cstdio>
#include <set>
#include <string>

#include "bench/synthetic_batch.h"
#include "common/json.h"
#include "learner/cpu/trainer.h"
#include "learner/gpu.h"

namespace freshet::bench {
namespace {

struct WorkCounts {
  double flops_per_sample = 0;
  double min_bytes_per_sample = 0;
};

WorkCounts CountWork(const cpu::Model<float>& model, const Batch& batch) {
  WorkCounts w;
  double dense_params = 0;
  for (const auto* p : model.params()) {
    const std::string& n = p->name;
    if (n.ends_with(".w") || n.ends_with(".down") || n.ends_with(".up"))
      w.flops_per_sample += 6.0 * static_cast<double>(p->value.rows()) * static_cast<double>(p->value.cols());
    dense_params += static_cast<double>(p->value.size());
  }
  const double B = batch.size;
  double bytes = 4.0 * static_cast<double>(batch.dense.cols()) + 3 * 4.0 * static_cast<double>(batch.labels.cols());
  for (size_t s = 0; s < batch.sparse.size(); ++s) {
    const auto& ids = batch.sparse[s].ids;
    bytes += (8.0 * static_cast<double>(ids.size()) + 4.0 * (B + 1)) / B;
    const std::set<uint64_t> distinct(ids.begin(), ids.end());
    bytes += 5 * 4.0 * model.embeddings().dim(static_cast<int>(s)) * static_cast<double>(distinct.size()) / B;
  }
  bytes += 8 * 4.0 * dense_params / B;
  w.min_bytes_per_sample = bytes;
  return w;
}

// Runs the PyTorch peer with `args`; its samples/s, or −1 when it did not run.
double RunTorchPeer(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 bench/peers/torch_mtl.py " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string json;
  char buf[4096];
  while (fgets(buf, sizeof buf, p) != nullptr) {
    std::printf("  peer: %s", buf);
    if (buf[0] == '{') json = buf;
  }
  const int rc = pclose(p);
  const auto at = json.find("\"value\": ");
  if (rc != 0 || at == std::string::npos) return -1;
  return std::stod(json.substr(at + 9));
}

}  // namespace

void MakeLargeLearnerVariant(FreshetConfig* config) {
  LearnerConfig* l = config->mutable_learner();
  l->set_batch_size(8192);
  ModelConfig* m = l->mutable_model();
  m->clear_sparse_slots();
  for (int s = 0; s < 16; ++s) {
    auto* slot = m->add_sparse_slots();
    slot->set_slot(s), slot->set_dim(64), slot->set_pooling(POOL_SUM);
  }
  m->set_num_shared_experts(16);
  m->clear_expert_hidden();
  m->add_expert_hidden(512);
}

int RunCudaLearnerBench(const FreshetConfig& config, double seconds, bool large) {
  const char* name = large ? "learner_cuda_large" : "learner_cuda";
  std::vector<TaskConfig> tasks(config.tasks().begin(), config.tasks().end());
  // The CPU model defines the parameter layout both backends share; its shapes give
  // the work counts (no training happens on it here).
  auto model = cpu::Trainer<float>::Create(config.learner(), tasks);
  if (!model.ok()) {
    std::fprintf(stderr, "bench_learner: %s\n", model.status().ToString().c_str());
    return 1;
  }
  const int batch = config.learner().batch_size();
  const Batch sample = SyntheticBatch(config.learner().model(), static_cast<int>(tasks.size()), batch, 1);
  const WorkCounts work = CountWork((*model)->model(), sample);
  std::printf("%s: batch %d, %.3f MFLOP/sample, >= %.0f bytes moved/sample (arithmetic intensity <= %.1f FLOP/byte)\n",
              name, batch, work.flops_per_sample / 1e6, work.min_bytes_per_sample,
              work.flops_per_sample / work.min_bytes_per_sample);

  const learner::GpuInfo gpu = learner::QueryGpu();
  std::string reason;
  if (!gpu.available) reason = "no CUDA device: " + gpu.reason;
  else if (!learner::kCudaTrainerAvailable) reason = "the CUDA trainer is not implemented yet (issue 8 step 3); only its ops are";

  // The peers need only a GPU and torch: measure them whenever a GPU is present, so
  // their figures exist even before our CUDA trainer does.
  double eager = -1, compiled = -1;
  if (gpu.available) {
    const std::string common = std::string("--device cuda --seconds ") + std::to_string(seconds) + (large ? " --large" : "");
    eager = RunTorchPeer(common);
    compiled = RunTorchPeer(common + " --compile");
  }
  if (!reason.empty()) std::printf("%s: skipped: %s\n", name, reason.c_str());

  JsonWriter w;
  w.BeginObject()
      .Key("bench").String(name)
      .Key("metric").String("train_samples_per_s")
      .Key("value").Null()
      .Key("unit").String("samples/s")
      .Key("skipped").Bool(!reason.empty())
      .Key("reason").String(reason)
      .Key("gpu").String(gpu.available ? gpu.name : "none")
      .Key("batch").Int(batch)
      .Key("flops_per_sample").Double(work.flops_per_sample)
      .Key("min_bytes_per_sample").Double(work.min_bytes_per_sample)
      .Key("achieved_gflops").Null()
      .Key("achieved_gbytes_per_s").Null()
      .Key("gpu_peak_memory_mb").Null();
  if (eager > 0) w.Key("torch_eager_samples_per_s").Double(eager);
  else w.Key("torch_eager_samples_per_s").Null();
  if (compiled > 0) w.Key("torch_compile_samples_per_s").Double(compiled);
  else w.Key("torch_compile_samples_per_s").Null();
  w.EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}

}  // namespace freshet::bench
