// Twin forward (GSU → ESU) and backward; see twin.h and docs/models.md §4.
#include "learner/cpu/twin.h"

#include <algorithm>
#include <bit>
#include <iterator>
#include <cmath>
#include <limits>

#include "common/check.h"

namespace freshet::cpu {

void TwinCrossBuckets(const store::Behaviour& b, int64_t request_time_ms, int out[kTwinCrossFeatures]) {
  const uint64_t age_s = request_time_ms > b.time_ms ? static_cast<uint64_t>(request_time_ms - b.time_ms) / 1000 : 0;
  out[0] = std::min(kTwinCrossBuckets - 1, static_cast<int>(std::bit_width(age_s)));
  out[1] = std::min(kTwinCrossBuckets - 1, static_cast<int>(std::bit_width(static_cast<uint64_t>(b.play_ms / 100))));
  out[2] = static_cast<int>(b.actions & (kTwinCrossBuckets - 1));
}

template <typename T>
Twin<T>::Twin(const std::string& name, const TwinSpec& spec, Rng* rng)
    : wq(name + ".wq", spec.item_dim, spec.heads * spec.key_dim),
      wh(name + ".wh", spec.item_dim, spec.heads * spec.key_dim),
      wc(name + ".wc", spec.heads, kTwinCrossFeatures * spec.cross_dim),
      beta(name + ".beta", spec.heads, kTwinCrossFeatures),
      cross_emb(name + ".cross_emb", kTwinCrossFeatures * kTwinCrossBuckets, spec.cross_dim),
      wv(name + ".wv", spec.item_dim + kTwinCrossFeatures * spec.cross_dim, spec.heads * spec.value_dim),
      wo(name + ".wo", spec.heads * spec.value_dim, spec.output_dim),
      spec_(spec),
      inv_sqrt_dk_(T(1) / std::sqrt(T(spec.key_dim))) {
  CHECK_GT(spec.item_dim, 0);
  CHECK_GT(spec.heads, 0);
  CHECK_GT(spec.top_k, 0);
  GlorotUniform(rng, spec.item_dim, spec.heads * spec.key_dim, wq.value);
  GlorotUniform(rng, spec.item_dim, spec.heads * spec.key_dim, wh.value);
  GlorotUniform(rng, spec.cross_dim, 1, wc.value);
  beta.value.setOnes();  // cross-feature biases start at full strength; w^c scales them
  GlorotUniform(rng, kTwinCrossBuckets, spec.cross_dim, cross_emb.value);
  GlorotUniform(rng, static_cast<int>(wv.value.rows()), static_cast<int>(wv.value.cols()), wv.value);
  GlorotUniform(rng, static_cast<int>(wo.value.rows()), spec.output_dim, wo.value);
}

template <typename T>
void Twin<T>::CollectParams(std::vector<Param<T>*>* out) {
  for (Param<T>* p : {&wq, &wh, &wc, &beta, &cross_emb, &wv, &wo}) out->push_back(p);
}

// ------------------------------------------------ the shared relevance function
//
// GSU and ESU call these same out-of-line bodies with a fixed summation order, so
// equal inputs give bit-equal scores (no inlining that could contract differently).

namespace {

// out = in W for a row vector: W (dim, width) row-major, the same loop for every
// caller so a projection computed for the cache equals one computed live.
template <typename T>
[[gnu::noinline]] void ProjectRow(const Mat<T>& w, const T* in, T* out) {
  const int64_t width = w.cols();
  std::fill(out, out + width, T(0));
  for (int64_t i = 0; i < w.rows(); ++i) {
    const T x = in[i];
    const T* row = w.data() + i * width;
    for (int64_t o = 0; o < width; ++o) out[o] += x * row[o];
  }
}

}  // namespace

template <typename T>
void Twin<T>::ProjectQuery(const T* q, T* qp) const {
  ProjectRow(wq.value, q, qp);
}

template <typename T>
void Twin<T>::ProjectKey(const T* kh, T* kp) const {
  ProjectRow(wh.value, kh, kp);
}

template <typename T>
[[gnu::noinline]] T Twin<T>::Score(int head, const T* kp, const T* qp, const int* buckets) const {
  const int dk = spec_.key_dim;
  T dot = T(0);
  for (int i = head * dk; i < (head + 1) * dk; ++i) dot += kp[i] * qp[i];
  T s = dot * inv_sqrt_dk_;
  const T* ct = cross_term_.data() + static_cast<int64_t>(head) * kTwinCrossFeatures * kTwinCrossBuckets;
  for (int j = 0; j < kTwinCrossFeatures; ++j) s += ct[j * kTwinCrossBuckets + buckets[j]];
  return s;
}

template <typename T>
void Twin<T>::PrepareCrossTerms() {
  const int cd = spec_.cross_dim;
  cross_term_.assign(static_cast<size_t>(spec_.heads) * kTwinCrossFeatures * kTwinCrossBuckets, T(0));
  for (int a = 0; a < spec_.heads; ++a)
    for (int j = 0; j < kTwinCrossFeatures; ++j)
      for (int u = 0; u < kTwinCrossBuckets; ++u) {
        const T c = cross_emb.value.row(j * kTwinCrossBuckets + u).dot(wc.value.row(a).segment(j * cd, cd));
        cross_term_[(a * kTwinCrossFeatures + j) * kTwinCrossBuckets + u] = beta.value(a, j) * c;
      }
}

template <typename T>
std::vector<int> Twin<T>::WalkHeads(const Mat<T>& scores) const {
  const int n = static_cast<int>(scores.cols());
  const int k = std::min(spec_.top_k, n);
  // Per head: the k best candidates, ties to the more recent (higher index). NaN
  // ranks last so a bad score cannot break the ordering.
  std::vector<std::vector<int>> ranked(spec_.heads);
  for (int a = 0; a < spec_.heads; ++a) {
    auto key = [&](int i) {
      const T s = scores(a, i);
      return std::isnan(s) ? -std::numeric_limits<T>::infinity() : s;
    };
    std::vector<int>& r = ranked[a];
    r.resize(n);
    for (int i = 0; i < n; ++i) r[i] = i;
    std::partial_sort(r.begin(), r.begin() + k, r.end(), [&](int x, int y) {
      const T kx = key(x), ky = key(y);
      return kx > ky || (kx == ky && x > y);
    });
  }
  // Walk the heads' rankings in turn until k unique candidates are collected. Head
  // 0's top k alone are k unique ones, so rank k−1 is never passed.
  std::vector<char> taken(n, 0);
  std::vector<int> out;
  out.reserve(k);
  for (int rank = 0; rank < k && static_cast<int>(out.size()) < k; ++rank)
    for (int a = 0; a < spec_.heads && static_cast<int>(out.size()) < k; ++a) {
      const int i = ranked[a][rank];
      if (!taken[i]) taken[i] = 1, out.push_back(i);
    }
  std::sort(out.begin(), out.end());
  return out;
}

template <typename T>
std::vector<int> Twin<T>::Candidates(const TwinRequest& r) const {
  std::vector<int> out;
  for (int i = r.count - 1; i >= 0 && static_cast<int>(out.size()) < spec_.max_len; --i)
    if (r.behaviours[i].time_ms < r.time_ms) out.push_back(i);
  std::reverse(out.begin(), out.end());
  return out;
}

// ------------------------------------------------------------------- forward

template <typename T>
void Twin<T>::Esu(const T* q, const TwinRequest& r, TwinItemFeatures<T>* features, Sample* s, T* cat) const {
  const int n = static_cast<int>(s->selected.size());
  const int H = spec_.item_dim, cd = spec_.cross_dim, dv = spec_.value_dim, J = kTwinCrossFeatures;
  s->items.resize(n);
  s->buckets.resize(static_cast<size_t>(n) * J);
  s->kf.setZero(n, H + J * cd);
  s->kp.resize(n, spec_.projection_width());
  for (int l = 0; l < n; ++l) {
    const store::Behaviour& b = r.behaviours[s->selected[l]];
    s->items[l] = b.item_id;
    features->Inherent(b.item_id, s->kf.row(l).data());
    TwinCrossBuckets(b, r.time_ms, &s->buckets[l * J]);
    for (int j = 0; j < J; ++j)
      s->kf.row(l).segment(H + j * cd, cd) = cross_emb.value.row(j * kTwinCrossBuckets + s->buckets[l * J + j]);
    ProjectKey(s->kf.row(l).data(), s->kp.row(l).data());
  }
  s->p.resize(spec_.heads, n);
  for (int a = 0; a < spec_.heads; ++a) {
    for (int l = 0; l < n; ++l) s->p(a, l) = Score(a, s->kp.row(l).data(), s->qp.data(), &s->buckets[l * J]);
    const T m = s->p.row(a).maxCoeff();
    s->p.row(a) = (s->p.row(a).array() - m).exp();
    s->p.row(a) /= s->p.row(a).sum();
  }
  s->v.noalias() = s->kf * wv.value;
  for (int a = 0; a < spec_.heads; ++a)
    Eigen::Map<RowVec<T>>(cat + a * dv, dv).noalias() = s->p.row(a) * s->v.middleCols(a * dv, dv);
}

template <typename T>
void Twin<T>::GatherHistory(const TwinRequest& r, TwinItemFeatures<T>* features, store::ProjectionCache* cache,
                            int64_t version) {
  Gathered& g = gathered_;
  const int n = static_cast<int>(g.cand.size()), W = spec_.projection_width();
  g.items.resize(n);
  for (int i = 0; i < n; ++i) g.items[i] = r.behaviours[g.cand[i]].item_id;
  g.proj.resize(static_cast<size_t>(n) * W);
  cache->GetMany(g.items, version, g.proj.data(), &g.result);
  g.kh.resize(spec_.item_dim);
  g.kp_fresh.resize(W);
  for (int i = 0; i < n; ++i) {  // refresh where missing or stale
    if (g.result[i] == store::ProjectionCache::Result::kHit) continue;
    features->Inherent(g.items[i], g.kh.data());
    ProjectKey(g.kh.data(), g.kp_fresh.data());
    float* row = g.proj.data() + static_cast<int64_t>(i) * W;
    for (int o = 0; o < W; ++o) row[o] = static_cast<float>(g.kp_fresh[o]);
    cache->Put(g.items[i], version, row);
  }
  g.kp.resize(g.proj.size());
  for (size_t i = 0; i < g.proj.size(); ++i) g.kp[i] = static_cast<T>(g.proj[i]);
  g.buckets.resize(static_cast<size_t>(n) * kTwinCrossFeatures);
  for (int i = 0; i < n; ++i) TwinCrossBuckets(r.behaviours[g.cand[i]], r.time_ms, &g.buckets[i * kTwinCrossFeatures]);
  g.projected = true;
}

template <typename T>
void Twin<T>::Forward(const Mat<T>& query, const std::vector<TwinRequest>& requests, TwinItemFeatures<T>* features,
                      store::ProjectionCache* cache, int64_t version, Mat<T>* y) {
  const int B = static_cast<int>(query.rows()), W = spec_.projection_width();
  CHECK_EQ(query.cols(), spec_.item_dim);
  CHECK_EQ(static_cast<int>(requests.size()), B);
  CHECK_EQ(cache->width(), W) << "projection cache built for another head/key shape";
  features_ = features;
  PrepareCrossTerms();
  samples_.assign(B, Sample{});
  cat_.setZero(B, spec_.heads * spec_.value_dim);
  for (int b = 0; b < B; ++b) {
    const TwinRequest& r = requests[b];
    Sample& s = samples_[b];
    s.qp.resize(W);
    ProjectQuery(query.row(b).data(), s.qp.data());
    // Rows of one request (serving's candidates) share one history view and time:
    // its candidates, cached projections and cross buckets are gathered once; only
    // the query differs per row. b == 0: the cache and weights may have moved since
    // the last Forward. The buffers keep their capacity from request to request.
    if (b == 0 || r.behaviours != gathered_.request.behaviours || r.count != gathered_.request.count ||
        r.time_ms != gathered_.request.time_ms) {
      gathered_.request = r;
      gathered_.cand = Candidates(r);
      gathered_.projected = false;
    }
    const std::vector<int>& cand = gathered_.cand;
    const int n = static_cast<int>(cand.size());
    if (n <= spec_.top_k) {
      s.selected = cand;  // nothing to search
    } else {
      // GSU: cached projections, refreshed where missing or stale.
      if (!gathered_.projected) GatherHistory(r, features, cache, version);
      Mat<T> scores(spec_.heads, n);
      for (int i = 0; i < n; ++i) {
        const T* kp = gathered_.kp.data() + static_cast<int64_t>(i) * W;
        const int* buckets = &gathered_.buckets[i * kTwinCrossFeatures];
        for (int a = 0; a < spec_.heads; ++a) scores(a, i) = Score(a, kp, s.qp.data(), buckets);
      }
      for (int pos : WalkHeads(scores)) s.selected.push_back(cand[pos]);
    }
    if (!s.selected.empty()) Esu(query.row(b).data(), r, features, &s, cat_.row(b).data());
  }
  y->noalias() = cat_ * wo.value;
}

template <typename T>
std::vector<int> Twin<T>::EsuTopK(const Mat<T>& query, int b, const TwinRequest& r, TwinItemFeatures<T>* features) {
  const std::vector<int> cand = Candidates(r);
  const int n = static_cast<int>(cand.size()), W = spec_.projection_width();
  if (n <= spec_.top_k) return cand;
  PrepareCrossTerms();
  std::vector<T> qp(W), kh(spec_.item_dim), kp(W);
  ProjectQuery(query.row(b).data(), qp.data());
  Mat<T> scores(spec_.heads, n);
  int buckets[kTwinCrossFeatures];
  for (int i = 0; i < n; ++i) {
    features->Inherent(r.behaviours[cand[i]].item_id, kh.data());
    ProjectKey(kh.data(), kp.data());
    TwinCrossBuckets(r.behaviours[cand[i]], r.time_ms, buckets);
    for (int a = 0; a < spec_.heads; ++a) scores(a, i) = Score(a, kp.data(), qp.data(), buckets);
  }
  std::vector<int> out;
  for (int pos : WalkHeads(scores)) out.push_back(cand[pos]);
  return out;
}

template <typename T>
double Twin<T>::Consistency(const Mat<T>& query, const std::vector<TwinRequest>& requests,
                            TwinItemFeatures<T>* features, int max_samples) {
  const int B = static_cast<int>(samples_.size());
  CHECK_EQ(static_cast<int>(requests.size()), B);
  const int stride = std::max(1, B / std::max(1, max_samples));
  double sum = 0;
  int counted = 0;
  for (int b = 0; b < B && counted < max_samples; b += stride) {
    const std::vector<int> oracle = EsuTopK(query, b, requests[b], features);
    if (oracle.empty()) continue;
    const std::vector<int>& gsu = samples_[b].selected;
    std::vector<int> both;
    std::set_intersection(gsu.begin(), gsu.end(), oracle.begin(), oracle.end(), std::back_inserter(both));
    sum += static_cast<double>(both.size()) / static_cast<double>(oracle.size());
    ++counted;
  }
  return counted == 0 ? 1.0 : sum / counted;
}

// ------------------------------------------------------------------ backward
//
// Per request and head (models.md §4): dp_l = ⟨dhead, v_l⟩; dα_l = p_l(dp_l − Σ p dp);
// dv_l += p_l dhead; dq' += dα_l k'_l/√d_k; dk'_l += dα_l q'/√d_k;
// dβ_j += dα_l c_lj, dw^c_j += dα_l β_j E_j[u_lj], dE_j[u_lj] += dα_l β_j w^c_j.

template <typename T>
void Twin<T>::Backward(const Mat<T>& query, const Mat<T>& dy, Mat<T>* dquery) {
  const int H = spec_.item_dim, cd = spec_.cross_dim, dv = spec_.value_dim, dk = spec_.key_dim;
  const int J = kTwinCrossFeatures, W = spec_.projection_width();
  wo.grad.noalias() += cat_.transpose() * dy;
  const Mat<T> dcat = dy * wo.value.transpose();  // (B, A·d_v)
  for (int b = 0; b < static_cast<int>(samples_.size()); ++b) {
    const Sample& s = samples_[b];
    const int n = static_cast<int>(s.selected.size());
    if (n == 0) continue;
    Mat<T> dv_mat = Mat<T>::Zero(n, spec_.heads * dv), dkp = Mat<T>::Zero(n, W);
    RowVec<T> dqp = RowVec<T>::Zero(W);
    for (int a = 0; a < spec_.heads; ++a) {
      const auto dhead = dcat.row(b).segment(a * dv, dv);
      RowVec<T> dp(n);
      for (int l = 0; l < n; ++l) dp(l) = s.v.row(l).segment(a * dv, dv).dot(dhead);
      const T mean = s.p.row(a).dot(dp);
      for (int l = 0; l < n; ++l) {
        const T pl = s.p(a, l);
        const T dalpha = pl * (dp(l) - mean);
        dv_mat.row(l).segment(a * dv, dv) += pl * dhead;
        dqp.segment(a * dk, dk) += (dalpha * inv_sqrt_dk_) * s.kp.row(l).segment(a * dk, dk);
        dkp.row(l).segment(a * dk, dk) += (dalpha * inv_sqrt_dk_) * s.qp.segment(a * dk, dk);
        for (int j = 0; j < J; ++j) {
          const int e = j * kTwinCrossBuckets + s.buckets[l * J + j];
          const auto wcj = wc.value.row(a).segment(j * cd, cd);
          const T bj = beta.value(a, j);
          beta.grad(a, j) += dalpha * cross_emb.value.row(e).dot(wcj);
          wc.grad.row(a).segment(j * cd, cd) += (dalpha * bj) * cross_emb.value.row(e);
          cross_emb.grad.row(e) += (dalpha * bj) * wcj;
        }
      }
    }
    wv.grad.noalias() += s.kf.transpose() * dv_mat;
    Mat<T> dkf = dv_mat * wv.value.transpose();  // (n, H + J·cd)
    wh.grad.noalias() += s.kf.leftCols(H).transpose() * dkp;
    dkf.leftCols(H).noalias() += dkp * wh.value.transpose();
    for (int l = 0; l < n; ++l) {
      for (int j = 0; j < J; ++j)
        cross_emb.grad.row(j * kTwinCrossBuckets + s.buckets[l * J + j]) += dkf.row(l).segment(H + j * cd, cd);
      if (features_ != nullptr) features_->AccumulateInherentGrad(s.items[l], dkf.row(l).data());
    }
    wq.grad.noalias() += query.row(b).transpose() * dqp;
    if (dquery != nullptr) dquery->row(b).noalias() += dqp * wq.value.transpose();
  }
}

FRESHET_INSTANTIATE(Twin)

}  // namespace freshet::cpu
