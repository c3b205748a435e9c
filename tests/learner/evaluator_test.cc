#include "learner/evaluator.h"

#include <gtest/gtest.h>

#include <random>

namespace freshet::learner {
namespace {

TEST(WeightedAucTest, KnownValues) {
  EXPECT_DOUBLE_EQ(WeightedAuc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}, {1, 1, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(WeightedAuc({0.9f, 0.8f, 0.2f, 0.1f}, {0, 0, 1, 1}, {1, 1, 1, 1}), 0.0);
  // One of four (pos, neg) pairs misordered.
  EXPECT_DOUBLE_EQ(WeightedAuc({0.1f, 0.5f, 0.4f, 0.9f}, {0, 0, 1, 1}, {1, 1, 1, 1}), 0.75);
  // All tied: 1/2.
  EXPECT_DOUBLE_EQ(WeightedAuc({0.3f, 0.3f, 0.3f}, {0, 1, 1}, {1, 1, 1}), 0.5);
  // One class only: undefined.
  EXPECT_EQ(WeightedAuc({0.3f, 0.4f}, {1, 1}, {1, 1}), -1);
  // A weight of 2 counts like a duplicated sample.
  EXPECT_DOUBLE_EQ(WeightedAuc({0.1f, 0.5f, 0.4f, 0.9f}, {0, 0, 1, 1}, {1, 2, 1, 1}),
                   WeightedAuc({0.1f, 0.5f, 0.5f, 0.4f, 0.9f}, {0, 0, 0, 1, 1}, {1, 1, 1, 1, 1}));
}

// Brute force over all pairs agrees with the rank formula on random data with ties.
TEST(WeightedAucTest, MatchesPairCounting) {
  std::mt19937 rng(3);
  std::vector<float> s, l, w;
  for (int i = 0; i < 300; ++i) {
    s.push_back(static_cast<float>(rng() % 20) / 20.0f);
    l.push_back(static_cast<float>(rng() % 3 == 0));
    w.push_back(0.5f + static_cast<float>(rng() % 4));
  }
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    for (size_t j = 0; j < s.size(); ++j) {
      if (l[i] < 0.5f || l[j] > 0.5f) continue;
      double pw = w[i] * w[j];
      pairs += pw;
      wins += pw * (s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  EXPECT_NEAR(WeightedAuc(s, l, w), wins / pairs, 1e-9);
}

TEST(PrequentialEvaluatorTest, WindowGaucLoglossCalibration) {
  PrequentialEvaluator ev({{"click", false}, {"play_time", true}}, 4);
  // Oldest two fall out of the window of 4.
  ev.Add(0, 1, 0.9f, 0);
  ev.Add(0, 1, 0.9f, 0);
  ev.Add(0, 1, 0.8f, 1);  // user 1: perfectly ordered
  ev.Add(0, 1, 0.2f, 0);
  ev.Add(0, 2, 0.3f, 1);  // user 2: misordered
  ev.Add(0, 2, 0.6f, 0);
  ev.Add(1, 1, 2.0f, 1.0f);
  ev.Add(1, 1, 1.0f, 3.0f);
  auto m = ev.Snapshot();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].count, 4);
  // Window: (0.8,1) (0.2,0) (0.3,1) (0.6,0): pairs 0.8>0.2 ✓, 0.8>0.6 ✓, 0.3>0.2 ✓, 0.3<0.6 ✗.
  EXPECT_DOUBLE_EQ(m[0].auc, 0.75);
  // GAUC: user 1 AUC 1 (2 samples), user 2 AUC 0 (2 samples) → 0.5.
  EXPECT_DOUBLE_EQ(m[0].gauc, 0.5);
  EXPECT_EQ(m[0].gauc_users, 2);
  const double ll = -(std::log(0.8) + std::log(0.8) + std::log(0.3) + std::log(0.4)) / 4;
  EXPECT_NEAR(m[0].log_loss, ll, 1e-6);
  EXPECT_NEAR(m[0].calibration, (0.8 + 0.2 + 0.3 + 0.6) / 2.0, 1e-6);
  EXPECT_TRUE(m[1].regression);
  EXPECT_NEAR(m[1].mse, (1.0 + 4.0) / 2, 1e-6);
  EXPECT_EQ(ev.total_added(), 8);
}

TEST(PrequentialEvaluatorTest, InformativeScoresBeatRandom) {
  PrequentialEvaluator ev({{"click", false}}, 20000);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0, 1);
  for (int i = 0; i < 20000; ++i) {
    float label = u(rng) < 0.3f ? 1.0f : 0.0f;
    float score = 0.5f * u(rng) + 0.3f * label;  // informative but noisy
    ev.Add(0, static_cast<uint64_t>(i % 100), score, label);
  }
  auto m = ev.Snapshot();
  EXPECT_GT(m[0].auc, 0.75);
  EXPECT_LT(m[0].auc, 0.95);
  EXPECT_GT(m[0].gauc, 0.7);
}

}  // namespace
}  // namespace freshet::learner
