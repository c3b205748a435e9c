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

}  // namespace
}  // namespace freshet::learner
