// DescribeGpu, shared by the CUDA and no-CUDA builds; see gpu.h.
#include "learner/gpu.h"

#include <sstream>

namespace freshet::learner {

std::string DescribeGpu(const GpuInfo& info) {
  std::ostringstream os;
  if (!info.available) {
    os << "gpu=none cuda_compiled=" << (info.compiled ? "true" : "false") << " reason=\"" << info.reason << "\"";
    return os.str();
  }
  os << "gpu=\"" << info.name << "\" devices=" << info.device_count << " sm=" << info.compute_major
     << info.compute_minor << " memory_gib=" << info.total_memory_bytes / (1024.0 * 1024 * 1024);
  return os.str();
}

}  // namespace freshet::learner
