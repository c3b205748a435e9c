// TrafficSimulator; see simulator.h. Distributions are computed here from raw
// mt19937_64 output (whose sequence the C++ standard fixes) rather than with
// std::*_distribution, whose algorithms differ between standard libraries: a seed
// means the same stream everywhere.
#include "ops/simulator.h"

#include <algorithm>
#include <cmath>

namespace freshet::ops {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr uint32_t kRegions = 32;
constexpr uint32_t kDevices = 4;
constexpr uint32_t kTags = 400;

float Sigmoid(double x) { return static_cast<float>(1.0 / (1.0 + std::exp(-x))); }
double Logit(double p) { return std::log(p / (1 - p)); }

// Cumulative Zipf weights 1/r^s over ranks 1..n, normalised so the last is 1.
std::vector<double> ZipfCdf(size_t n, double s) {
  std::vector<double> cdf(n);
  double total = 0;
  for (size_t r = 0; r < n; ++r) {
    total += 1.0 / std::pow(static_cast<double>(r + 1), s);
    cdf[r] = total;
  }
  for (auto& c : cdf) c /= total;
  return cdf;
}

}  // namespace

TrafficSimulator::TrafficSimulator(const SimulatorConfig& config, int64_t start_ms)
    : config_(config), start_ms_(start_ms), rng_(config.seed()) {
  const int dim = config_.latent_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  // Category centroids: items of one category share interests, so category ids carry
  // signal a model can pick up before it has seen an item.
  std::vector<std::vector<float>> centroids(config_.num_categories(), std::vector<float>(dim));
  for (auto& c : centroids) for (auto& x : c) x = static_cast<float>(Normal() * scale);

  users_.resize(config_.num_users());
  for (auto& u : users_) {
    u.latent.resize(dim);
    for (auto& x : u.latent) x = static_cast<float>(Normal() * scale);
    u.bias = static_cast<float>(Normal() * 0.3);
    u.activity = static_cast<float>(std::exp(Normal() * 0.5));
    u.region = static_cast<uint32_t>(Uniform() * kRegions);
    u.device = static_cast<uint32_t>(Uniform() * kDevices);
    u.tenure_days = static_cast<uint32_t>(std::exp(Uniform() * 7));
  }
  items_.resize(config_.num_items());
  for (size_t i = 0; i < items_.size(); ++i) {
    Item& it = items_[i];
    it.category = static_cast<uint32_t>(Uniform() * config_.num_categories());
    it.latent.resize(dim);
    for (int d = 0; d < dim; ++d) it.latent[d] = static_cast<float>(0.8 * centroids[it.category][d] + 0.6 * Normal() * scale);
    it.bias = static_cast<float>(Normal() * 0.3);
    it.duration_s = static_cast<float>(std::exp(std::log(30.0) + 0.6 * Normal()));
    it.author = static_cast<uint32_t>(Uniform() * config_.num_authors());
    int ntags = 1 + static_cast<int>(Uniform() * 3);
    for (int t = 0; t < ntags; ++t) {
      // Tags cluster by category: 10 per category plus a shared tail.
      uint32_t tag = Uniform() < 0.7 ? (it.category * 10 + static_cast<uint32_t>(Uniform() * 10)) % kTags
                                     : static_cast<uint32_t>(Uniform() * kTags);
      it.tags.push_back(tag + 1);
    }
  }
  // Popularity: a random permutation of items gets Zipf weights by rank.
  item_by_rank_.resize(items_.size());
  for (size_t i = 0; i < items_.size(); ++i) item_by_rank_[i] = static_cast<uint32_t>(i);
  for (size_t i = items_.size(); i > 1; --i) std::swap(item_by_rank_[i - 1], item_by_rank_[static_cast<size_t>(Uniform() * i)]);
  for (size_t r = 0; r < items_.size(); ++r)
    items_[item_by_rank_[r]].popularity_rank = static_cast<uint32_t>(r + 1);
  item_cdf_ = ZipfCdf(items_.size(), config_.item_popularity_zipf());
  // Users are ranked by index; 0 leaves user_cdf_ empty (uniform).
  if (config_.user_activity_zipf() > 0) user_cdf_ = ZipfCdf(users_.size(), config_.user_activity_zipf());
  for (const auto& d : config_.label_delays()) delays_[d.kind()] = {std::log(d.median_ms()), d.log_sigma()};
}

double TrafficSimulator::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

double TrafficSimulator::Normal() {
  // Box-Muller; one of the pair is enough here.
  double u1 = Uniform();
  double u2 = Uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
}

double TrafficSimulator::LogNormalDelayMs(LabelKind kind) {
  auto it = delays_.find(kind);
  if (it == delays_.end()) return 1000.0;
  return std::exp(it->second.first + it->second.second * Normal());
}

uint32_t TrafficSimulator::SampleUser() {
  const double u = Uniform();
  if (user_cdf_.empty()) return static_cast<uint32_t>(u * users_.size());
  const size_t rank = std::lower_bound(user_cdf_.begin(), user_cdf_.end(), u) - user_cdf_.begin();
  return static_cast<uint32_t>(std::min(rank, users_.size() - 1));
}

uint32_t TrafficSimulator::SampleItem() {
  double u = Uniform();
  size_t rank = std::lower_bound(item_cdf_.begin(), item_cdf_.end(), u) - item_cdf_.begin();
  return item_by_rank_[std::min(rank, items_.size() - 1)];
}

Impression TrafficSimulator::MakeImpression(uint64_t index, int64_t event_ms, const User& user, uint32_t user_index,
                                            const Item& item, uint32_t item_index) {
  Impression imp;
  imp.set_request_id("s" + std::to_string(config_.seed()) + "-" + std::to_string(index));
  imp.set_user_id(user_index + 1);
  imp.set_item_id(item_index + 1);
  imp.set_event_time_ms(event_ms);
  const int hour = static_cast<int>((event_ms / 3'600'000) % 24);
  auto sparse = [&](uint32_t slot, std::initializer_list<uint64_t> ids) {
    SparseFeature* f = imp.add_sparse();
    f->set_slot(slot);
    for (uint64_t id : ids) f->add_ids(id);
  };
  sparse(0, {user_index + 1ULL});
  sparse(1, {item_index + 1ULL});
  sparse(2, {item.author + 1ULL});
  sparse(3, {item.category + 1ULL});
  sparse(4, {user.region + 1ULL});
  sparse(5, {user.device + 1ULL});
  sparse(6, {static_cast<uint64_t>(hour) + 1});
  SparseFeature* tags = imp.add_sparse();
  tags->set_slot(7);
  for (uint64_t t : item.tags) tags->add_ids(t);
  const float dense[kDenseSlots] = {
      std::log1p(item.duration_s),
      std::log(static_cast<float>(item.popularity_rank)),
      user.activity,
      item.bias + static_cast<float>(Normal() * 0.2),  // a noisy "quality" signal
      static_cast<float>(std::sin(2 * kPi * hour / 24)),
      static_cast<float>(std::cos(2 * kPi * hour / 24)),
      static_cast<float>(index % 10) / 10.0f,
      std::log1p(static_cast<float>(user.tenure_days)),
  };
  for (uint32_t s = 0; s < kDenseSlots; ++s) {
    DenseFeature* f = imp.add_dense();
    f->set_slot(s);
    f->add_values(dense[s]);
  }
  return imp;
}

void TrafficSimulator::Schedule(int64_t due_ms, Pending p) {
  p.due_ms = due_ms;
  p.seq = next_seq_++;
  pending_.push(std::move(p));
}

void TrafficSimulator::ScheduleLabels(const Impression& imp, const User& user, const Item& item) {
  double dot = 0;
  for (size_t d = 0; d < user.latent.size(); ++d) dot += user.latent[d] * item.latent[d];
  const double affinity = dot * std::sqrt(static_cast<double>(user.latent.size()));  // ~N(0, 1)
  const double a = config_.affinity_scale() * affinity;
  const bool click = Uniform() < Sigmoid(Logit(config_.base_ctr()) + a + user.bias + item.bias);

  auto emit = [&](LabelKind kind, float value) {
    Pending p;
    p.is_impression = false;
    p.label.set_request_id(imp.request_id());
    p.label.set_user_id(imp.user_id());
    p.label.set_item_id(imp.item_id());
    p.label.set_kind(kind);
    p.label.set_value(value);
    int64_t t = imp.event_time_ms() + static_cast<int64_t>(LogNormalDelayMs(kind));
    p.label.set_event_time_ms(t);
    Schedule(t, std::move(p));
  };

  // Watch time for every impression: a quick swipe unless clicked.
  const double completion = click ? Sigmoid(0.8 * a + 0.5 * Normal()) : 0.08 * Uniform();
  const float play_ms = static_cast<float>(item.duration_s * 1000.0 * completion);
  emit(LABEL_PLAY_TIME, play_ms);
  if (click) {
    emit(LABEL_CLICK, 1);
    if (completion > 0.6) emit(LABEL_LONG_VIEW, 1);
    if (Uniform() < Sigmoid(-2.0 + 1.2 * a)) emit(LABEL_LIKE, 1);
    if (Uniform() < Sigmoid(-3.8 + 1.0 * a)) emit(LABEL_COMMENT, 1);
    if (Uniform() < Sigmoid(-4.0 + 1.0 * a)) emit(LABEL_FORWARD, 1);
    if (Uniform() < Sigmoid(-4.2 + 1.2 * a)) emit(LABEL_FOLLOW, 1);
    if (Uniform() < Sigmoid(-3.5 + 0.8 * a)) emit(LABEL_COLLECT, 1);
  } else if (Uniform() < Sigmoid(-5.0 - 1.5 * a)) {
    emit(LABEL_HATE, 1);
  }
}

Status TrafficSimulator::AdvanceTo(int64_t now_ms, EventSink* sink) {
  const double interval_ms = 1000.0 / config_.impressions_per_second();
  while (true) {
    const int64_t next_imp_ms = start_ms_ + static_cast<int64_t>(static_cast<double>(next_index_) * interval_ms);
    const bool have_pending = !pending_.empty() && pending_.top().due_ms <= now_ms;
    const bool exhausted = config_.max_impressions() > 0 &&
                           next_index_ >= static_cast<uint64_t>(config_.max_impressions());
    const bool have_impression = !exhausted && next_imp_ms <= now_ms;
    if (!have_pending && !have_impression) return Status::Ok();

    if (have_pending && (!have_impression || pending_.top().due_ms <= next_imp_ms)) {
      const Pending& p = pending_.top();
      Status s = p.is_impression ? sink->OnImpression(p.impression) : sink->OnLabel(p.label);
      if (!s.ok()) return s;
      if (p.is_impression) {
        ++stats_.impressions;
      } else {
        ++stats_.labels;
        ++stats_.labels_by_kind[p.label.kind()];
      }
      pending_.pop();
      continue;
    }

    // Generate impression next_index_ (deterministic given the seed and the index order).
    const uint32_t user_index = SampleUser();
    const uint32_t item_index = SampleItem();
    const User& user = users_[user_index];
    const Item& item = items_[item_index];
    Impression imp = MakeImpression(next_index_, next_imp_ms, user, user_index, item, item_index);
    ScheduleLabels(imp, user, item);
    ++next_index_;
    if (Uniform() < config_.early_label_fraction()) {
      // A reordered stream: the impression reaches Kafka after some of its labels.
      Pending p;
      p.is_impression = true;
      p.impression = std::move(imp);
      Schedule(next_imp_ms + 1000 + static_cast<int64_t>(Uniform() * 4000), std::move(p));
      continue;
    }
    Status s = sink->OnImpression(imp);
    if (!s.ok()) {
      // Keep it: retry first on the next call.
      Pending p;
      p.is_impression = true;
      p.impression = std::move(imp);
      Schedule(next_imp_ms, std::move(p));
      return s;
    }
    ++stats_.impressions;
  }
}

}  // namespace freshet::ops
