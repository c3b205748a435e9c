// Every model family end to end against central finite differences in double
// precision: all dense parameters and the embedding rows the batch touched, on a
// random batch with masks, including a task whose mask is all zero in the batch.
// Also: experts/gates start different, the builder rejects bad configs, inference
// mode neither admits ids nor depends on the rest of the batch.
#include "learner/cpu/model.h"

#include <gtest/gtest.h>

#include "learner/cpu/model_builder.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

using testing::CheckTensor;
using testing::GradCheckResult;
using testing::RandomBatch;
using testing::RandomFill;
using testing::SmallConfig;
using testing::SmallTasks;

std::unique_ptr<Model<double>> Build(const LearnerConfig& config) {
  auto specs = TaskSpecsFromConfig(SmallTasks());
  EXPECT_TRUE(specs.ok()) << specs.status();
  auto model = BuildModel<double>(config, *specs);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(model).value();
}

struct VariantCase {
  std::string name;
  std::function<void(LearnerConfig*)> edit;
};

class VariantGradientTest : public ::testing::TestWithParam<VariantCase> {};

TEST_P(VariantGradientTest, MatchesFiniteDifferences) {
  LearnerConfig config = SmallConfig(FAMILY_PLE);
  GetParam().edit(&config);
  auto model = Build(config);
  ASSERT_NE(model, nullptr);
  // Move every parameter off its init (BN γ = 1, feature-gate A = 0 hide paths).
  Rng rng(11);
  for (Param<double>* p : model->params()) {
    RandomFill(&rng, 0.3, &p->grad);
    p->value += p->grad;
    p->ZeroGrad();
  }
  // Batch of 12 with task 1 (long_view) unobserved everywhere.
  Batch batch = RandomBatch(config.model(), 3, 12, /*seed=*/21, /*zero_mask_task=*/1, /*vocab=*/6);
  const Mat<double> labels = batch.labels.cast<double>(), masks = batch.masks.cast<double>(),
                    weights = batch.weights.cast<double>();
  auto loss = [&] {
    model->Forward(batch, /*training=*/true, /*now_ms=*/1000);
    Mat<double> g;
    return MaskedMultiTaskLoss(model->tasks(), model->logits(), labels, masks, weights, &g).total;
  };
  model->Forward(batch, true, 1000);
  Mat<double> dlogits;
  auto out = MaskedMultiTaskLoss(model->tasks(), model->logits(), labels, masks, weights, &dlogits);
  ASSERT_EQ(out.observed[1], 0);
  EXPECT_EQ(dlogits.col(1).norm(), 0.0);
  model->ZeroGrad();
  model->Backward(dlogits);

  GradCheckResult res;
  for (Param<double>* p : model->params())
    CheckTensor(p->name, p->value.data(), p->grad.data(), p->value.size(), loss, &res, /*max_entries=*/12);
  // Embedding rows: the table holds them; sparse_grads() lists the rows touched.
  const auto sparse = model->sparse_grads();  // copy: the loss re-runs Forward
  int rows_checked = 0;
  for (size_t s = 0; s < sparse.size(); ++s)
    for (size_t u = 0; u < sparse[s].rows.size(); u += 2, ++rows_checked)
      CheckTensor("emb" + std::to_string(s), model->embeddings().Weights(sparse[s].rows[u]),
                  sparse[s].grad.row(u).data(), sparse[s].grad.cols(), loss, &res);
  EXPECT_GT(rows_checked, 5);
  EXPECT_GRADS_OK(res);

  // The dense part also against the input x directly (covers the dense features).
  Mat<double> x = model->input_grad();  // shape donor
  RandomFill(&rng, 1.0, &x);
  auto loss_x = [&] {
    model->ForwardFromInput(x, true);
    Mat<double> g;
    return MaskedMultiTaskLoss(model->tasks(), model->logits(), labels, masks, weights, &g).total;
  };
  model->ForwardFromInput(x, true);
  MaskedMultiTaskLoss(model->tasks(), model->logits(), labels, masks, weights, &dlogits);
  model->ZeroGrad();
  model->Backward(dlogits);
  const Mat<double> dx = model->input_grad();
  GradCheckResult res_x;
  CheckTensor("x", x.data(), dx.data(), x.size(), loss_x, &res_x);
  EXPECT_GRADS_OK(res_x);
}

std::vector<VariantCase> Variants() {
  auto home = [](std::function<void(HomeConfig*)> f) {
    return [f](LearnerConfig* c) {
      c->mutable_model()->set_family(FAMILY_HOME);
      f(c->mutable_model()->mutable_home());
    };
  };
  auto family = [](ModelFamily f) { return [f](LearnerConfig* c) { c->mutable_model()->set_family(f); }; };
  return {
      {"shared_bottom", family(FAMILY_SHARED_BOTTOM)},
      {"single_task", family(FAMILY_SINGLE_TASK)},
      {"mmoe", family(FAMILY_MMOE)},
      {"omoe", family(FAMILY_OMOE)},
      {"mmoe_gate_bias", [](LearnerConfig* c) { c->mutable_model()->set_family(FAMILY_MMOE); c->mutable_model()->set_gate_bias(true); }},
      {"cgc", family(FAMILY_CGC)},
      {"ple_2_levels", family(FAMILY_PLE)},
      {"ple_3_levels_bn", [](LearnerConfig* c) {
         c->mutable_model()->set_ple_levels(3);
         c->mutable_model()->set_expert_norm(NORM_BATCH);
         c->mutable_model()->set_expert_output_activation(ACT_SWISH);
       }},
      {"home_all_on", home([](HomeConfig*) {})},
      {"home_no_norm_swish", home([](HomeConfig* h) { h->set_expert_norm_swish(false); })},
      {"home_no_hierarchy", home([](HomeConfig* h) { h->set_hierarchy(false); })},
      {"home_no_feature_gate", home([](HomeConfig* h) { h->set_feature_gate(false); })},
      {"home_feature_gate_level1_only", home([](HomeConfig* h) { h->set_feature_gate_levels(FEATURE_GATE_LEVEL1_ONLY); })},
      {"home_no_self_gate", home([](HomeConfig* h) { h->set_self_gate(false); })},
      {"home_gate_reads_branch", home([](HomeConfig* h) { h->set_level2_gate_input(HOME_GATE_INPUT_BRANCH); })},
      {"home_experts_read_concat", home([](HomeConfig* h) { h->set_level2_expert_input(HOME_EXPERT_INPUT_CONCAT); })},
      {"home_more_experts", home([](HomeConfig* h) {
         h->set_global_experts_l1(3);
         h->set_category_experts_l1(2);
         h->set_global_experts_l2(2);
         h->set_category_experts_l2(2);
         h->set_task_experts(2);
       })},
      {"home_all_off", home([](HomeConfig* h) {
         h->set_expert_norm_swish(false);
         h->set_hierarchy(false);
         h->set_feature_gate(false);
         h->set_self_gate(false);
       })},
  };
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, VariantGradientTest, ::testing::ValuesIn(Variants()),
                         [](const ::testing::TestParamInfo<VariantCase>& i) { return i.param.name; });

TEST(ModelTest, ExpertsAndGatesStartDifferent) {
  LearnerConfig config = SmallConfig(FAMILY_MMOE);
  config.mutable_model()->set_num_shared_experts(4);
  auto model = Build(config);
  // Layer-0 weights of the MMoE experts: columns [e·h, (e+1)·h) of one (D, n·h) matrix.
  const int h = config.model().expert_hidden(0);
  const Mat<double>& w = model->params()[0]->value;
  ASSERT_EQ(w.cols(), 4 * h);
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      EXPECT_GT((w.middleCols(i * h, h) - w.middleCols(j * h, h)).norm(), 0.1 * w.middleCols(i * h, h).norm());
  // The three task gates start different too.
  std::vector<const Param<double>*> gates;
  for (const Param<double>* p : model->params())
    if (p->name.find(".gate.") != std::string::npos && p->name.ends_with(".w")) gates.push_back(p);
  ASSERT_EQ(gates.size(), 3u);
  EXPECT_GT((gates[0]->value - gates[1]->value).norm(), 0.1);
  EXPECT_GT((gates[1]->value - gates[2]->value).norm(), 0.1);
}

TEST(ModelTest, StructureOfPleAndHome) {
  auto ple = Build(SmallConfig(FAMILY_PLE));
  // Level 1: one ExpertOp (3 tasks × 1 + 2 shared); level 2: 3 task ops + 1 shared op.
  ASSERT_EQ(ple->expert_ops().size(), 5u);
  EXPECT_EQ(ple->expert_ops()[0]->group().spec().num_experts, 5);
  // Gates: 3 task + 1 shared at level 1, 3 task at level 2 (no shared gate at the last level).
  EXPECT_EQ(ple->gate_ops().size(), 7u);

  auto home = Build(SmallConfig(FAMILY_HOME));
  bool has_watch_self = false, has_click_gate = false;
  for (const GateOp<double>* g : home->gate_ops()) {
    has_watch_self |= g->name() == "home.l1.self.watch";
    if (g->name() == "home.l2.gate.click") {
      has_click_gate = true;
      // click is in the interaction group: its gate sees S², C²_interaction, T_click.
      EXPECT_EQ(g->experts().size(), 3u);
    }
  }
  EXPECT_TRUE(has_watch_self);
  EXPECT_TRUE(has_click_gate);
  for (const ExpertOp<double>* op : home->expert_ops()) {
    EXPECT_TRUE(op->group().spec().batch_norm) << op->name();
    EXPECT_EQ(op->group().spec().output_act, Act::kSwish) << op->name();
  }
}

TEST(ModelTest, BuilderRejectsBadConfig) {
  auto specs = *TaskSpecsFromConfig(SmallTasks());
  LearnerConfig c = SmallConfig(FAMILY_PLE);
  c.mutable_model()->set_ple_levels(0);
  EXPECT_EQ(BuildModel<float>(c, specs).status().code(), StatusCode::kInvalidArgument);
  c = SmallConfig(FAMILY_HOME);
  c.mutable_model()->mutable_home()->set_feature_gate_rank(0);
  EXPECT_EQ(BuildModel<float>(c, specs).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildModel<float>(SmallConfig(FAMILY_MMOE), {}).status().code(), StatusCode::kInvalidArgument);
  std::vector<TaskConfig> tasks = SmallTasks();
  tasks[0].set_home_group("browse");
  EXPECT_EQ(TaskSpecsFromConfig(tasks).status().code(), StatusCode::kInvalidArgument);
}

TEST(ModelTest, InferenceModeAdmitsNothingAndIsPerSample) {
  LearnerConfig config = SmallConfig(FAMILY_HOME);
  auto model = Build(config);
  Batch batch = RandomBatch(config.model(), 3, 16, 5);
  model->Forward(batch, /*training=*/true, 1);  // admits ids, moves BN running stats
  const int64_t rows = model->embeddings().stats().rows;
  Batch fresh = RandomBatch(config.model(), 3, 16, 6, -1, /*vocab=*/1000);
  model->Forward(fresh, /*training=*/false, 2);
  EXPECT_EQ(model->embeddings().stats().rows, rows);
  const Mat<double> all = model->logits();
  // Inference uses running stats, so a sample's score does not depend on its batch mates.
  Batch first_two = fresh;
  first_two.size = 2;
  for (auto& s : first_two.sparse) {
    s.offsets.resize(3);
    s.ids.resize(s.offsets.back());
  }
  first_two.dense.conservativeResize(2, Eigen::NoChange);
  model->Forward(first_two, false, 2);
  EXPECT_LT((model->logits() - all.topRows(2)).norm(), 1e-12);
}

}  // namespace
}  // namespace freshet::cpu
