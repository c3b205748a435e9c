// GPU discovery for the learner's backend choice (backend AUTO picks CUDA only when
// QueryGpu() finds a device). Works in every build: without the CUDA backend compiled
// in, or on a machine with no GPU or driver, it reports "no GPU" with the reason,
// never crashes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"
#include "schemas/model_config.pb.h"

namespace freshet::learner {

struct GpuInfo {
  bool compiled = false;   // the CUDA backend is part of this build
  bool available = false;  // at least one usable device
  int device_count = 0;
  std::string name;        // device 0
  int compute_major = 0;
  int compute_minor = 0;
  size_t total_memory_bytes = 0;
  std::string reason;      // why not available, in words
};

GpuInfo QueryGpu();

// One line for logs and `freshet run`'s banner, e.g. "gpu=none reason=\"...\"".
std::string DescribeGpu(const GpuInfo& info);

// The backend that learner.backend resolves to on this machine, and why.
struct BackendChoice {
  Backend backend = BACKEND_CPU;  // CPU or CUDA, never AUTO
  std::string reason;             // for the log line, e.g. "no CUDA device: ..."
};

// Whether this build can train on the GPU end to end. False until the CUDA trainer
// (issue 8, step 3) lands: the ops in learner/cuda/ exist, the model on top does not.
constexpr bool kCudaTrainerAvailable = false;

// learner.backend → the backend to build. AUTO: CUDA when a device is present and
// the CUDA trainer is available, else CPU with the reason. CUDA: InvalidArgument
// naming learner.backend when no device is present; Unimplemented while the CUDA
// trainer is not available. CPU: CPU.
StatusOr<BackendChoice> ResolveBackend(Backend requested, const GpuInfo& gpu);

// y = a*x + y on device 0: the smallest kernel that proves compile, launch and copy
// work. FAILED_PRECONDITION when no GPU is available.
Status GpuSaxpy(float a, const std::vector<float>& x, std::vector<float>* y);

}  // namespace freshet::learner
