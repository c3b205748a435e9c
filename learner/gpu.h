// GPU discovery for the learner's backend choice (backend AUTO picks CUDA only when
// QueryGpu() finds a device). Works in every build: without the CUDA backend compiled
// in, or on a machine with no GPU or driver, it reports "no GPU" with the reason,
// never crashes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

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

// y = a*x + y on device 0: the smallest kernel that proves compile, launch and copy
// work. FAILED_PRECONDITION when no GPU is available.
Status GpuSaxpy(float a, const std::vector<float>& x, std::vector<float>* y);

}  // namespace freshet::learner
