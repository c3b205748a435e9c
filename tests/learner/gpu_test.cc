// The CUDA smoke test: device query plus one kernel checked against the CPU. Skips
// with the reason when no GPU is present (CI, most developer machines).
#include <gtest/gtest.h>

#include "learner/gpu.h"

namespace freshet::learner {
namespace {

TEST(GpuTest, QueryNeverFailsAndExplainsAbsence) {
  GpuInfo info = QueryGpu();
  if (!info.available) {
    EXPECT_FALSE(info.reason.empty());
    EXPECT_NE(DescribeGpu(info).find("gpu=none"), std::string::npos);
  } else {
    EXPECT_GT(info.device_count, 0);
    EXPECT_FALSE(info.name.empty());
  }
}

TEST(GpuTest, SaxpyMatchesCpu) {
  GpuInfo info = QueryGpu();
  if (!info.available) GTEST_SKIP() << "no GPU, GPU test skipped: " << info.reason;
  std::vector<float> x(10000), y(10000), expect(10000);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = 0.001f * static_cast<float>(i);
    y[i] = 1.0f - 0.0005f * static_cast<float>(i);
    expect[i] = 2.5f * x[i] + y[i];
  }
  ASSERT_TRUE(GpuSaxpy(2.5f, x, &y).ok());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_FLOAT_EQ(y[i], expect[i]) << "i=" << i;
}

TEST(GpuTest, SaxpyWithoutGpuIsAnErrorNotACrash) {
  GpuInfo info = QueryGpu();
  if (info.available) GTEST_SKIP() << "a GPU is present; this test covers the no-GPU path";
  std::vector<float> x(4, 1.0f), y(4, 1.0f);
  Status s = GpuSaxpy(1.0f, x, &y);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(y[0], 1.0f);
}

// learner.backend resolution (issue 8): a pure function of the request and the
// GpuInfo, so both machine kinds are covered on any machine.
TEST(BackendTest, ResolvesRequestAgainstTheDevice) {
  GpuInfo none;
  none.reason = "no CUDA device present";
  GpuInfo h100;
  h100.compiled = h100.available = true;
  h100.device_count = 1;
  h100.name = "NVIDIA H100";

  auto cpu = ResolveBackend(BACKEND_CPU, h100);
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->backend, BACKEND_CPU);

  auto automatic = ResolveBackend(BACKEND_AUTO, none);
  ASSERT_TRUE(automatic.ok());
  EXPECT_EQ(automatic->backend, BACKEND_CPU);
  EXPECT_NE(automatic->reason.find("no CUDA device"), std::string::npos) << automatic->reason;

  auto cuda = ResolveBackend(BACKEND_CUDA, none);
  EXPECT_EQ(cuda.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cuda.status().message().find("learner.backend"), std::string::npos) << cuda.status().message();

  // With a device, AUTO/CUDA pick CUDA once the CUDA trainer exists; until then AUTO
  // stays on CPU saying why, and an explicit CUDA request is refused, naming the field.
  auto auto_gpu = ResolveBackend(BACKEND_AUTO, h100);
  ASSERT_TRUE(auto_gpu.ok());
  auto cuda_gpu = ResolveBackend(BACKEND_CUDA, h100);
  if (kCudaTrainerAvailable) {
    EXPECT_EQ(auto_gpu->backend, BACKEND_CUDA);
    ASSERT_TRUE(cuda_gpu.ok());
    EXPECT_EQ(cuda_gpu->backend, BACKEND_CUDA);
  } else {
    EXPECT_EQ(auto_gpu->backend, BACKEND_CPU);
    EXPECT_NE(auto_gpu->reason.find("not implemented"), std::string::npos);
    EXPECT_EQ(cuda_gpu.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(cuda_gpu.status().message().find("learner.backend"), std::string::npos);
  }
}

// This machine: whatever it has, AUTO never fails.
TEST(BackendTest, AutoAlwaysResolvesHere) {
  auto choice = ResolveBackend(BACKEND_AUTO, QueryGpu());
  ASSERT_TRUE(choice.ok()) << choice.status().ToString();
  EXPECT_FALSE(choice->reason.empty());
}

}  // namespace
}  // namespace freshet::learner
