// configs/reference.pbtxt parses and builds the reference model of issue 10.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

#include "learner/cpu/trainer.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

TEST(ReferenceConfigTest, ParsesAndBuildsThePleReferenceModel) {
  FreshetConfig config;
  ASSERT_TRUE(testing::LoadReferenceConfig(&config)) << "configs/reference.pbtxt missing or does not parse";
  ASSERT_EQ(config.tasks_size(), 8);
  EXPECT_EQ(config.tasks(7).type(), TASK_REGRESSION);
  EXPECT_EQ(config.learner().batch_size(), 512);
  std::vector<TaskConfig> tasks(config.tasks().begin(), config.tasks().end());
  auto trainer = Trainer<float>::Create(config.learner(), tasks);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  Model<float>& model = (*trainer)->model();
  EXPECT_EQ(model.input_dim(), 8 * 16 + 8);
  // Level 1: one op of 8 specific + 4 shared experts; level 2: 8 task ops + 1 shared.
  ASSERT_EQ(model.expert_ops().size(), 10u);
  EXPECT_EQ(model.expert_ops()[0]->group().spec().num_experts, 12);
  EXPECT_EQ(model.expert_ops()[0]->group().spec().hidden, std::vector<int>{128});
  EXPECT_EQ(model.gate_ops().size(), 8u + 1u + 8u);
  Batch batch = testing::RandomBatch(config.learner().model(), 8, 16, 1, -1, 100);
  auto step = (*trainer)->Train(batch, 0);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_TRUE(std::isfinite(step->loss));
}

}  // namespace
}  // namespace freshet::cpu
