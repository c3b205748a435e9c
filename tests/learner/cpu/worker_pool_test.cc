// WorkerPool (common/worker_pool.h) hands out every part exactly once, and LearnerConfig.threads changes
// nothing a model computes: training with 1, 2 and 3 threads gives bit-identical
// learner state (parameters, optimizer state, embeddings) for every family, including
// HoME with BatchNorm and feature gates, and for the reference model's shapes.
#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "learner/cpu/trainer.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

TEST(WorkerPoolTest, RunsEveryPartOnceAcrossManyRuns) {
  for (int threads : {1, 2, 3}) {
    WorkerPool pool(threads);
    for (int run = 0; run < 200; ++run) {
      const int parts = 1 + run % 5;
      std::vector<std::atomic<int>> hits(parts);
      pool.Run(parts, [&](int p) { hits[p].fetch_add(1); });
      for (int p = 0; p < parts; ++p) ASSERT_EQ(hits[p].load(), 1) << "threads " << threads << " part " << p;
    }
  }
}

// Offset of the first byte where a and b differ, or -1 (EXPECT_EQ on megabytes of
// state would print all of it).
int64_t FirstDifference(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return static_cast<int64_t>(std::min(a.size(), b.size()));
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return -1;
}

// Trains `steps` steps with the given thread count and returns the saved state.
std::string TrainState(LearnerConfig config, const std::vector<TaskConfig>& tasks, int threads, int batch_size,
                       int steps) {
  config.set_threads(threads);
  auto trainer = Trainer<float>::Create(config, tasks);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  if (!trainer.ok()) return "";
  for (int s = 0; s < steps; ++s) {
    Batch batch = testing::RandomBatch(config.model(), static_cast<int>(tasks.size()), batch_size, 100 + s);
    auto r = (*trainer)->Train(batch, s);
    EXPECT_TRUE(r.ok()) << r.status();
  }
  return (*trainer)->SaveState();
}

TEST(WorkerPoolTest, ThreadCountDoesNotChangeTrainingOfAnyFamily) {
  for (ModelFamily family : {FAMILY_SHARED_BOTTOM, FAMILY_MMOE, FAMILY_CGC, FAMILY_PLE, FAMILY_HOME}) {
    LearnerConfig config = testing::SmallConfig(family);
    // Widths of several 24-column slices (expert_group.cc's kSplitAlign), so the lone
    // task-specific experts (num_specific_experts = 1) are split between 2 and 3
    // threads too; at 24 or less a lone expert stays whole in one part.
    config.mutable_model()->set_expert_hidden(0, 72);
    config.mutable_model()->set_expert_output_dim(48);
    const std::string one = TrainState(config, testing::SmallTasks(), 1, 40, 3);
    ASSERT_FALSE(one.empty());
    for (int threads : {2, 3})
      EXPECT_EQ(FirstDifference(one, TrainState(config, testing::SmallTasks(), threads, 40, 3)), -1)
          << ModelFamily_Name(family) << " with " << threads << " threads";
  }
}

TEST(WorkerPoolTest, ThreadCountDoesNotChangeTrainingOfTheReferenceModel) {
  FreshetConfig config;
  ASSERT_TRUE(testing::LoadReferenceConfig(&config)) << "configs/reference.pbtxt missing or does not parse";
  std::vector<TaskConfig> tasks(config.tasks().begin(), config.tasks().end());
  const std::string one = TrainState(config.learner(), tasks, 1, 96, 2);
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(FirstDifference(one, TrainState(config.learner(), tasks, 2, 96, 2)), -1);
}

TEST(WorkerPoolTest, ThreadsOutOfRangeIsAnErrorNamingTheField) {
  LearnerConfig config = testing::SmallConfig(FAMILY_MMOE);
  config.set_threads(0);
  auto trainer = Trainer<float>::Create(config, testing::SmallTasks());
  ASSERT_FALSE(trainer.ok());
  EXPECT_NE(trainer.status().message().find("learner.threads"), std::string::npos) << trainer.status();
}

}  // namespace
}  // namespace freshet::cpu
