// Diagnostics: a deliberately collapsed ReLU expert reports a zero share near 1; gate
// statistics, entropy and occupancy are consistent; gauges land in the registry.
#include "learner/cpu/diagnostics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "learner/cpu/model_builder.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

TEST(DiagnosticsTest, CollapsedExpertAndGateStatistics) {
  LearnerConfig config = testing::SmallConfig(FAMILY_MMOE);
  config.mutable_model()->set_num_shared_experts(3);
  config.mutable_model()->clear_expert_hidden();  // one linear layer + ReLU per expert
  auto model = BuildModel<float>(config, *TaskSpecsFromConfig(testing::SmallTasks())).value();
  // Collapse expert 0: a large negative bias puts every pre-activation below 0.
  Linear<float>& layer = model->expert_ops()[0]->group().layer(0);
  const int d = config.model().expert_output_dim();
  layer.b.value.leftCols(d).setConstant(-100.0f);
  Batch batch = testing::RandomBatch(config.model(), 3, 64, 9);
  model->Forward(batch, /*training=*/false, 0);

  ModelDiagnostics diag = ComputeDiagnostics(*model);
  ASSERT_EQ(diag.experts.size(), 3u);
  EXPECT_EQ(diag.experts[0].expert, "l1.shared.0");
  EXPECT_GT(diag.experts[0].zero_share, 0.99);
  EXPECT_EQ(diag.experts[0].output_mean, 0.0);
  EXPECT_EQ(diag.experts[0].output_std, 0.0);
  EXPECT_LT(diag.experts[1].zero_share, 0.9);
  EXPECT_GT(diag.experts[1].output_std, 0.0);

  ASSERT_EQ(diag.gates.size(), 3u);  // one per task
  for (const GateDiagnostics& g : diag.gates) {
    double sum = 0;
    for (double m : g.weight_mean) sum += m;
    EXPECT_NEAR(sum, 1.0, 1e-5) << g.gate;
    EXPECT_GT(g.entropy, 0.0);
    EXPECT_LE(g.entropy, std::log(3.0) + 1e-6);
  }
  ASSERT_EQ(diag.occupancy.size(), 3u);  // every MMoE expert is shared by 3 task gates
  for (const OccupancyDiagnostics& o : diag.occupancy) {
    double sum = 0;
    for (double s : o.task_share) sum += s;
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }

  MetricsRegistry registry;
  ExportDiagnostics(diag, model->tasks(), &registry);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("freshet_learner_expert_zero_share{expert=\"l1.shared.0\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("freshet_learner_gate_entropy{gate=\"l1.gate.click\"}"), std::string::npos);
  EXPECT_NE(text.find("freshet_learner_expert_task_occupancy{expert=\"l1.shared.1\",task=\"play_time\"}"),
            std::string::npos);
}

TEST(DiagnosticsTest, HomeReportsBatchNormAndSelfGates) {
  LearnerConfig config = testing::SmallConfig(FAMILY_HOME);
  auto model = BuildModel<float>(config, *TaskSpecsFromConfig(testing::SmallTasks())).value();
  Batch batch = testing::RandomBatch(config.model(), 3, 32, 4);
  model->Forward(batch, /*training=*/true, 0);
  ModelDiagnostics diag = ComputeDiagnostics(*model);
  for (const ExpertDiagnostics& e : diag.experts) {
    EXPECT_TRUE(e.has_norm) << e.expert;
    EXPECT_FLOAT_EQ(e.bn_gamma_mean, 1.0f);  // init
    // BN + Swish: no expert is collapsed at init.
    EXPECT_LT(e.zero_share, 0.9) << e.expert;
  }
  int self_gates = 0;
  for (const GateDiagnostics& g : diag.gates) self_gates += g.self_gate;
  EXPECT_EQ(self_gates, 2 + 3);  // watch + interaction at level 1, one per task at level 2
}

}  // namespace
}  // namespace freshet::cpu
