// TWIN inside the model and the trainer: the whole model's gradients with the module
// on (its parameters, the item embeddings it reads as query and as K_h), and the
// learner's cycle on a real RocksDB behaviour cache: read histories (MultiGet) →
// train → append the batch's engagements (merge) → the next batch sees them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "learner/cpu/loss.h"
#include "learner/cpu/model_builder.h"
#include "learner/cpu/trainer.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

using testing::CheckTensor;
using testing::GradCheckResult;
using testing::RandomFill;

LearnerConfig TwinConfigFor(ModelFamily family) {
  LearnerConfig c = testing::SmallConfig(family);
  TwinConfig* t = c.mutable_model()->mutable_twin();
  t->set_enabled(true);
  t->set_item_slot(1);  // the sum-pooled slot of width 4
  t->set_heads(2);
  t->set_key_dim(3);
  t->set_value_dim(2);
  t->set_output_dim(3);
  t->set_cross_dim(2);
  t->set_top_k(3);
  t->set_max_len(20);
  t->set_consistency_interval_steps(1);
  return c;
}

// Histories of 0..8 behaviours over items < vocab, all before the request.
void AddHistories(Batch* b, int vocab, uint64_t seed) {
  Rng rng(seed);
  b->behaviour_offsets = {0};
  b->event_times_ms.assign(b->size, int64_t{1} << 40);
  for (int i = 0; i < b->size; ++i) {
    const int n = static_cast<int>(rng.Next() % 9);
    for (int j = 0; j < n; ++j)
      b->behaviours.push_back({rng.Next() % vocab, 1000 * (j + 1), static_cast<uint32_t>(rng.Next()),
                               static_cast<uint32_t>(rng.Next() % 100000)});
    b->behaviour_offsets.push_back(static_cast<int32_t>(b->behaviours.size()));
  }
}

TEST(TwinModelTest, WholeModelGradientsWithTwin) {
  const LearnerConfig config = TwinConfigFor(FAMILY_MMOE);
  auto specs = TaskSpecsFromConfig(testing::SmallTasks());
  ASSERT_TRUE(specs.ok());
  auto built = BuildModel<double>(config, *specs);
  ASSERT_TRUE(built.ok()) << built.status();
  auto& model = *built;
  ASSERT_NE(model->twin(), nullptr);
  EXPECT_EQ(model->input_dim(), 12 + 3);
  // Move every parameter off its init, as model_test.cc does (zero biases at init put
  // ReLU pre-activations where finite differences straddle kinks).
  Rng rng(11);
  for (Param<double>* p : model->params()) {
    RandomFill(&rng, 0.3, &p->grad);
    p->value += p->grad;
    p->ZeroGrad();
  }
  Batch batch = testing::RandomBatch(config.model(), 3, 10, /*seed=*/31, -1, /*vocab=*/6);
  AddHistories(&batch, 8, 32);  // items 6, 7 never get a row: zero features
  const Mat<double> labels = batch.labels.cast<double>(), masks = batch.masks.cast<double>(),
                    weights = batch.weights.cast<double>();
  Mat<double> dlogits, unused;
  auto loss_into = [&](Mat<double>* grad) {
    model->Forward(batch, /*training=*/true, /*now_ms=*/1000);
    return MaskedMultiTaskLoss(model->tasks(), model->logits(), labels, masks, weights, grad).total;
  };
  auto loss = [&] { return loss_into(&unused); };
  loss_into(&dlogits);
  model->ZeroGrad();
  model->Backward(dlogits);
  GradCheckResult res;
  int twin_params = 0;
  for (Param<double>* p : model->params()) {
    const bool twin = p->name.rfind("twin.", 0) == 0;
    twin_params += twin;
    if (twin) {
      EXPECT_GT(p->grad.norm(), 0.0) << p->name;
    }
    CheckTensor(p->name, p->value.data(), p->grad.data(), p->value.size(), loss, &res, twin ? 1 << 30 : 12);
  }
  EXPECT_EQ(twin_params, 7);
  // Item-slot rows carry the query's and the attended behaviours' gradients.
  const auto sparse = model->sparse_grads();
  for (size_t s = 0; s < sparse.size(); ++s)
    for (size_t u = 0; u < sparse[s].rows.size(); ++u)
      CheckTensor("emb" + std::to_string(s), model->embeddings().Weights(sparse[s].rows[u]),
                  sparse[s].grad.row(u).data(), sparse[s].grad.cols(), loss, &res);
  EXPECT_GRADS_OK(res);
}

TEST(TwinModelTest, BadTwinConfigNamesTheField) {
  LearnerConfig config = TwinConfigFor(FAMILY_MMOE);
  config.mutable_model()->mutable_twin()->set_item_slot(99);
  auto trainer = Trainer<float>::Create(config, testing::SmallTasks());
  ASSERT_FALSE(trainer.ok());
  EXPECT_NE(trainer.status().message().find("learner.model.twin.item_slot"), std::string::npos) << trainer.status();
  config = TwinConfigFor(FAMILY_MMOE);
  config.mutable_model()->mutable_twin()->set_top_k(21);
  trainer = Trainer<float>::Create(config, testing::SmallTasks());
  EXPECT_NE(trainer.status().message().find("learner.model.twin.top_k"), std::string::npos) << trainer.status();
}

// Samples for `users` users over `items` items; click = 1 when the item is one the
// user's "taste" (item % 3 == user % 3) picks, so histories carry signal.
std::vector<Sample> Samples(int n, int users, int items, int64_t t0, Rng* rng) {
  std::vector<Sample> out;
  for (int i = 0; i < n; ++i) {
    Sample s;
    const uint64_t user = rng->Next() % users, item = rng->Next() % items;
    s.set_sample_id("s" + std::to_string(t0 + i));
    s.set_user_id(user);
    s.set_item_id(item);
    s.set_event_time_ms(t0 + i * 10);
    auto* f = s.add_sparse();
    f->set_slot(1);
    f->add_ids(item);
    const bool click = item % 3 == user % 3;
    s.add_label(click ? 1 : 0), s.add_label(click ? 1 : 0), s.add_label(click ? 30.0f : 1.0f);
    for (int t = 0; t < 3; ++t) s.add_mask(true);
    out.push_back(std::move(s));
  }
  return out;
}

// The learner's cycle on a fresh RocksDB cache: read the batch's histories → train →
// append its engagements. Samples from 6 users over 40 items, 64 per step.
class TwinCycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("freshet_twin_" + std::to_string(getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  struct Result {
    int measured = 0;                 // steps that measured consistency
    size_t longest = 0;               // longest history a batch carried
    double late_click_loss = 0;       // mean prequential click loss of the last quarter
  };

  Result Run(const LearnerConfig& config, int steps, MetricsRegistry* metrics) {
    Result out;
    store::KvStore::Options o;
    o.path = (dir_ / std::to_string(run_++)).string();
    store::BehaviourCache::Configure(&o, config.model().twin().max_len());
    auto db = store::KvStore::Open(o);
    cache_ = std::make_unique<store::BehaviourCache>(db.ok() ? db->get() : nullptr, config.model().twin().max_len());
    trainer_ = Trainer<float>::Create(config, testing::SmallTasks(), metrics);
    if (!db.ok() || !trainer_.ok()) {
      ADD_FAILURE() << db.status() << " " << trainer_.status();
      return out;
    }
    db_ = std::move(db).value();
    BatchBuilder builder(config.model(), 3);
    Rng rng(5);
    for (int step = 0; step < steps; ++step) {
      for (const Sample& s : Samples(64, 6, 40, 1'000'000 + step * 1000, &rng)) EXPECT_TRUE(builder.Add(s).ok());
      Batch batch = builder.Finish();
      EXPECT_TRUE(AttachBehaviours(*cache_, &batch).ok());
      if (step > 0) {
        EXPECT_FALSE(batch.behaviours.empty()) << "step " << step;
      }
      for (size_t b = 0; b + 1 < batch.behaviour_offsets.size(); ++b)
        out.longest = std::max<size_t>(out.longest, batch.behaviour_offsets[b + 1] - batch.behaviour_offsets[b]);
      auto r = (*trainer_)->Train(batch, 0);
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        return out;
      }
      if (r->twin_consistency >= 0) {
        ++out.measured;
        EXPECT_LE(r->twin_consistency, 1.0);
      }
      if (step >= steps - steps / 4) out.late_click_loss += r->task_loss[0] / (steps / 4);
      store::WriteBatch wb;
      QueueEngagements(batch, {true, true, false}, /*play_time_task=*/2, *cache_, &wb);
      EXPECT_FALSE(wb.empty());
      EXPECT_TRUE(db_->Write(wb).ok());
    }
    return out;
  }

  std::filesystem::path dir_;
  int run_ = 0;
  std::unique_ptr<store::KvStore> db_;
  std::unique_ptr<store::BehaviourCache> cache_;
  StatusOr<std::unique_ptr<Trainer<float>>> trainer_ = InternalError("not created");
};

TEST_F(TwinCycleTest, HistoriesFlowThroughTheCacheIntoTraining) {
  MetricsRegistry metrics;
  const Result r = Run(TwinConfigFor(FAMILY_MMOE), 12, &metrics);
  ASSERT_TRUE(trainer_.ok());
  EXPECT_EQ(r.measured, 12);
  EXPECT_EQ(r.longest, 20u) << "histories reach max_len and are trimmed there";
  // Every stored engagement is a positive one with its action bits and play time.
  for (uint64_t u = 0; u < 6; ++u) {
    auto h = cache_->Read(u);
    ASSERT_TRUE(h.ok());
    EXPECT_FALSE(h->empty());
    for (const store::Behaviour& b : *h) {
      EXPECT_EQ(b.item_id % 3, u % 3);
      EXPECT_EQ(b.actions, 3u);
      EXPECT_EQ(b.play_ms, 30000u);
    }
  }
  EXPECT_GT((*trainer_)->model().projection_cache()->size(), 0);
  // Inference mode (what serving runs) scores with the module too.
  BatchBuilder builder(testing::SmallConfig(FAMILY_MMOE).model(), 3);
  Rng rng(9);
  for (const Sample& s : Samples(8, 6, 40, 9'000'000, &rng)) ASSERT_TRUE(builder.Add(s).ok());
  Batch batch = builder.Finish();
  ASSERT_TRUE(AttachBehaviours(*cache_, &batch).ok());
  auto predicted = (*trainer_)->Predict(batch);
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  EXPECT_TRUE(predicted->allFinite());
  EXPECT_NE((*trainer_)->model().twin()->selected(0).size(), 0u);
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("freshet_learner_twin_consistency"), std::string::npos);
  EXPECT_NE(text.find("freshet_store_projection_lookups_total{result=\"hit\"}"), std::string::npos);
  // Restoring state keeps exactly the projections GSU would still serve: none stamped
  // by weights the restore discards (a later version), none due for a refresh.
  store::ProjectionCache* cache = (*trainer_)->model().projection_cache();
  const int64_t now = (*trainer_)->steps();
  const uint64_t future = 1ull << 40, old = future + 1;
  std::vector<float> row(cache->width(), 0.5f), out(cache->width());
  cache->Put(future, now + 3, row.data());
  cache->Put(old, now - 1000, row.data());
  const int64_t before = cache->size();
  const std::string saved = (*trainer_)->SaveState();
  ASSERT_TRUE((*trainer_)->LoadState(saved).ok());
  EXPECT_GT(cache->size(), 0);
  EXPECT_LE(cache->size(), before - 2);
  EXPECT_EQ(cache->Get(future, now, out.data()), store::ProjectionCache::Result::kMiss);
  EXPECT_EQ(cache->Get(old, now, out.data()), store::ProjectionCache::Result::kMiss);
  EXPECT_TRUE((*trainer_)->SaveState() == saved) << "save → load → save is not the identity";
  // A state cut short inside the projections is refused.
  EXPECT_EQ((*trainer_)->LoadState(saved.substr(0, saved.size() - 3)).code(), StatusCode::kDataLoss);
}

// Clicks follow the user's taste, and nothing but the history tells the model who
// the user is: with TWIN the click loss falls well below what the item alone allows
// (H(1/3) ≈ 0.64 nats). Larger embedding init and rates so 400 small steps suffice.
TEST_F(TwinCycleTest, TwinLearnsTheTasteHistoriesShow) {
  LearnerConfig on = TwinConfigFor(FAMILY_MMOE);
  on.mutable_dense_optimizer()->set_learning_rate(0.01f);
  on.mutable_sparse_optimizer()->set_learning_rate(0.3f);
  on.mutable_embedding()->set_init_std(0.3f);
  LearnerConfig off = on;
  off.mutable_model()->mutable_twin()->set_enabled(false);
  const double with_twin = Run(on, 400, nullptr).late_click_loss;
  const double without = Run(off, 400, nullptr).late_click_loss;
  std::printf("late click loss: twin %.4f, without %.4f\n", with_twin, without);
  EXPECT_LT(with_twin, without - 0.1);
}

}  // namespace
}  // namespace freshet::cpu
