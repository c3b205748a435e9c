// Helpers of the CUDA parity suite (label gpu): a device context or a clean skip,
// host ↔ device copies of Eigen matrices, and element-wise comparison with an
// absolute + relative tolerance that each test chooses and explains.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "learner/cpu/tensor.h"
#include "learner/cuda/device.cuh"

namespace freshet::learner::cuda::testing {

using MatF = cpu::Mat<float>;

// Declares `ctx` (std::unique_ptr<DeviceContext>) or skips the test when no GPU is
// present; any other failure to start is a test failure.
#define FRESHET_CUDA_CONTEXT_OR_SKIP(ctx)                                                         \
  std::unique_ptr<::freshet::learner::cuda::DeviceContext> ctx;                                   \
  {                                                                                               \
    auto created = ::freshet::learner::cuda::DeviceContext::Create();                             \
    if (!created.ok() && created.status().code() == ::freshet::StatusCode::kFailedPrecondition)   \
      GTEST_SKIP() << created.status().message();                                                 \
    ASSERT_TRUE(created.ok()) << created.status().ToString();                                     \
    ctx = std::move(*created);                                                                    \
  }

inline void RandomFill(cpu::Rng* rng, double scale, MatF* m) {
  for (int64_t i = 0; i < m->size(); ++i) m->data()[i] = static_cast<float>(scale * rng->Normal());
}

inline MatF Random(cpu::Rng* rng, int rows, int cols, double scale = 1.0) {
  MatF m(rows, cols);
  RandomFill(rng, scale, &m);
  return m;
}

// Device copy of a host matrix (row-major, same element order).
inline DeviceBuffer<float> ToDevice(const DeviceContext& ctx, const MatF& m) {
  DeviceBuffer<float> d;
  EXPECT_TRUE(d.Resize(static_cast<size_t>(m.size())).ok());
  EXPECT_TRUE(d.CopyFromHost(m.data(), static_cast<size_t>(m.size()), ctx.compute()).ok());
  EXPECT_TRUE(cudaStreamSynchronize(ctx.compute()) == cudaSuccess);
  return d;
}

inline MatF ToHost(const DeviceContext& ctx, const DeviceBuffer<float>& d, int rows, int cols) {
  MatF m(rows, cols);
  EXPECT_EQ(d.size(), static_cast<size_t>(rows) * cols);
  EXPECT_TRUE(d.CopyToHost(m.data(), static_cast<size_t>(m.size()), ctx.compute()).ok());
  return m;
}

// |gpu − cpu| ≤ atol + rtol·|cpu| for every entry; reports the worst entry.
inline void ExpectClose(const std::string& what, const MatF& cpu, const MatF& gpu, double atol, double rtol) {
  ASSERT_EQ(cpu.rows(), gpu.rows()) << what;
  ASSERT_EQ(cpu.cols(), gpu.cols()) << what;
  int failures = 0;
  double worst = 0;
  int64_t worst_i = -1;
  for (int64_t i = 0; i < cpu.size(); ++i) {
    const double c = cpu.data()[i], g = gpu.data()[i];
    const double excess = std::abs(g - c) - (atol + rtol * std::abs(c));
    if (!(excess <= 0)) {  // also catches NaN
      ++failures;
      if (worst_i < 0 || excess > worst) worst = excess, worst_i = i;
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << cpu.size() << " entries differ; worst index "
                         << worst_i << " cpu " << (worst_i >= 0 ? cpu.data()[worst_i] : 0.f) << " gpu "
                         << (worst_i >= 0 ? gpu.data()[worst_i] : 0.f);
}

}  // namespace freshet::learner::cuda::testing
