// Twin: the TWIN long-term behaviour module (docs/models.md §4), CPU reference,
// forward and backward. Per request b with target inherent features q (H) and a
// history of L behaviours:
//
//   relevance, per head a (identical in GSU and ESU):
//     α_a,l = (k_l W^h_a)·(q W^q_a) / √d_k + Σ_j β_a,j (E_j[bucket_j(l)] · w^c_a,j)
//     k_l = K_h row of behaviour l's item (H); E_j: cross-feature bucket embeddings
//     (J = 3: age of the behaviour, play time, action bits; cd wide each)
//   GSU   scores every behaviour with the CACHED k_l W^h (store::ProjectionCache,
//         refreshed when older than refresh_after_versions), walks the heads'
//         rankings in turn until top_k unique behaviours are collected
//   ESU   recomputes α live for those k with the current weights, p_a = softmax(α_a),
//         head_a = Σ_l p_a,l [k_l | K_c,l] W^v_a,  y = [head_1 … head_A] W^o  (B, d_out)
//
// The selection is a hard top-k: no gradient flows through it; gradients reach
// W^q, W^h, W^c, β, E, W^v, W^o, q and the attended behaviours' K_h through ESU only.
// GSU and ESU share one scoring routine with a fixed summation order, so with a
// zero-staleness cache GSU returns exactly the top-k ESU's scoring gives over the
// whole history (tests/learner/cpu/twin_test.cc); Consistency() measures how far a
// staler cache drifts from that (freshet_learner_twin_consistency).
//
//   Twin<float> twin("twin", spec, &rng);
//   twin.Forward(q, requests, &features, &cache, version, &y);   // y: (B, d_out)
//   twin.Backward(q, dy, &dq);                                   // after loss
//
// Thread-safety: none (one model, one thread); the ProjectionCache is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "learner/cpu/tensor.h"
#include "store/behaviour_cache.h"
#include "store/projection_cache.h"

namespace freshet::cpu {

inline constexpr int kTwinCrossFeatures = 3;  // J
inline constexpr int kTwinCrossBuckets = 32;  // buckets per cross feature

// bucket_j of a behaviour seen from a request at request_time_ms: log2 buckets of
// the behaviour's age in seconds and of its play time in 100 ms units, and the low
// five action bits.
void TwinCrossBuckets(const store::Behaviour& b, int64_t request_time_ms, int out[kTwinCrossFeatures]);

struct TwinSpec {
  int item_dim = 0;       // H: width of an item's inherent features
  int heads = 4;
  int key_dim = 16;       // d_k
  int value_dim = 16;     // d_v per head
  int output_dim = 32;    // d_out
  int cross_dim = 8;      // cd: width of each cross-feature embedding
  int top_k = 100;
  int max_len = 10000;    // newest behaviours GSU considers
  int projection_width() const { return heads * key_dim; }
};

// One request: its history (oldest first) and its time. Behaviours at or after
// time_ms are ignored, so a history read late never leaks the future.
struct TwinRequest {
  const store::Behaviour* behaviours = nullptr;
  int count = 0;
  int64_t time_ms = 0;
};

// Where K_h comes from (item embeddings in the model; a table in tests).
template <typename T>
class TwinItemFeatures {
 public:
  virtual ~TwinItemFeatures() = default;
  // The item's inherent features, H values.
  virtual void Inherent(uint64_t item, T* out) = 0;
  // dL/dK_h of an attended behaviour's item (H values). Default: constants.
  virtual void AccumulateInherentGrad(uint64_t item, const T* grad) {}
};

template <typename T>
class Twin {
 public:
  Twin() = default;
  Twin(const std::string& name, const TwinSpec& spec, Rng* rng);

  // query: (B, H); requests: B. The cache's width must be spec.projection_width().
  // version stamps refreshed projections and decides staleness. y: (B, d_out).
  void Forward(const Mat<T>& query, const std::vector<TwinRequest>& requests, TwinItemFeatures<T>* features,
               store::ProjectionCache* cache, int64_t version, Mat<T>* y);
  // Accumulates every Param's grad, dquery (B, H) when given (+=), and K_h grads
  // through features->AccumulateInherentGrad.
  // REQUIRES: the matching Forward's query, features still valid.
  void Backward(const Mat<T>& query, const Mat<T>& dy, Mat<T>* dquery);

  // Behaviour indices (into request b's history) GSU selected in the last Forward,
  // ascending.
  const std::vector<int>& selected(int b) const { return samples_[b].selected; }
  // The oracle: ESU's live relevance over request b's whole history, same head walk.
  std::vector<int> EsuTopK(const Mat<T>& query, int b, const TwinRequest& request, TwinItemFeatures<T>* features);
  // Mean over up to max_samples requests of the last Forward (evenly spaced) of
  // |GSU top-k ∩ ESU top-k| / |ESU top-k|; 1 when no request has a history.
  double Consistency(const Mat<T>& query, const std::vector<TwinRequest>& requests, TwinItemFeatures<T>* features,
                     int max_samples);

  void CollectParams(std::vector<Param<T>*>* out);
  const TwinSpec& spec() const { return spec_; }

  Param<T> wq;         // (H, A·d_k)
  Param<T> wh;         // (H, A·d_k)
  Param<T> wc;         // (A, J·cd)   w^c_a,j = row a, block j
  Param<T> beta;       // (A, J)
  Param<T> cross_emb;  // (J·32, cd)  E_j[bucket] = row j·32 + bucket
  Param<T> wv;         // (H + J·cd, A·d_v)
  Param<T> wo;         // (A·d_v, d_out)

 private:
  struct Sample {
    std::vector<int> selected;             // k behaviour indices
    std::vector<uint64_t> items;           // (k)
    std::vector<int> buckets;              // (k, J)
    Mat<T> kf;                             // (k, H + J·cd) = [K_h | K_c]
    Mat<T> kp;                             // (k, A·d_k)    K_h W^h, live
    Mat<T> v;                              // (k, A·d_v)
    Mat<T> p;                              // (A, k)        softmax(α)
    RowVec<T> qp;                          // (A·d_k)       q W^q
  };

  void PrepareCrossTerms();                                  // → cross_term_
  void ProjectQuery(const T* q, T* qp) const;                // qp = q W^q
  void ProjectKey(const T* kh, T* kp) const;                 // kp = k W^h
  T Score(int head, const T* kp, const T* qp, const int* buckets) const;
  // Head walk over scores (A, n) of candidates; returns candidate positions, ascending.
  std::vector<int> WalkHeads(const Mat<T>& scores) const;
  // Eligible behaviour indices of a request (before its time, newest max_len).
  std::vector<int> Candidates(const TwinRequest& r) const;
  void Esu(const T* q, const TwinRequest& r, TwinItemFeatures<T>* features, Sample* s, T* cat) const;

  // GSU's view of one request's history, shared by consecutive rows with the same
  // history view and time (serving's candidates).
  struct Gathered {
    TwinRequest request;
    std::vector<int> cand;     // eligible behaviour indices
    bool projected = false;    // kp and buckets filled
    std::vector<T> kp;         // (n, A·d_k)  cached K_h W^h, as T
    std::vector<int> buckets;  // (n, J)
    // GatherHistory's scratch. Kept, like kp and buckets, across requests and steps:
    // in training nearly every row is its own request, and with a 10,000-behaviour
    // history proj and kp are 2.5 MB each (A·d_k = 64), too much to allocate per row.
    std::vector<uint64_t> items;                         // (n)
    std::vector<float> proj;                             // (n, A·d_k) as the cache stores it
    std::vector<store::ProjectionCache::Result> result;  // (n)
    std::vector<T> kh, kp_fresh;                         // (H), (A·d_k): one refreshed key
  };
  // Fills gathered_.kp/buckets for gathered_.cand from the cache, refreshing misses.
  void GatherHistory(const TwinRequest& r, TwinItemFeatures<T>* features, store::ProjectionCache* cache,
                     int64_t version);

  TwinSpec spec_;
  T inv_sqrt_dk_ = T(1);
  std::vector<T> cross_term_;  // (A, J, 32): β_a,j (E_j[bucket] · w^c_a,j)
  std::vector<Sample> samples_;
  Gathered gathered_;
  Mat<T> cat_;                 // (B, A·d_v)
  TwinItemFeatures<T>* features_ = nullptr;
};

}  // namespace freshet::cpu
