// The model is a list of ops over numbered activation buffers, run forward in order
// and backward in reverse (a hand-written tape). Buffer 0 is the input x = [pooled
// embeddings | dense]. Every variant (shared-bottom … HoME) is a different list
// written by model_builder.cc; the ops themselves are small:
//
//   ExpertOp   buffer[in] (B, D)          → buffer[out] (B, n·d)   n experts, one GEMM group
//   GateOp     buffer[sel] (B, D_sel),
//              experts from ExpertOps     → buffer[out] (B, d)     softmax/σ mixture (+= for self gates)
//   SelectOp   one expert block           → buffer[out] (B, d)     "gate" over a single expert
//   ConcatOp   buffer[a] (B, da), [b]     → buffer[out] (B, da+db)
//   TowerOp    buffer[in] (B, d)          → buffer[out] (B, 1)     task logit
//
// Backward ACCUMULATES into grad buffers: the model zeroes them once per step, and a
// buffer read by several ops (x feeds every level-1 expert and gate) sums their grads.
//
// Thread-safety: none.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "learner/cpu/expert_group.h"
#include "learner/cpu/layers.h"

namespace freshet::cpu {

template <typename T>
struct Buffers {
  std::vector<Mat<T>> value;  // value[i]: (B, width[i])
  std::vector<Mat<T>> grad;   // same shapes
  std::vector<int> width;
};

template <typename T>
class Op {
 public:
  virtual ~Op() = default;
  virtual void Forward(Buffers<T>* b, bool training) = 0;
  virtual void Backward(Buffers<T>* b) = 0;
  virtual void CollectParams(std::vector<Param<T>*>* out) {}
  virtual void CollectBuffers(std::vector<RowVec<T>*>* out) {}
};

template <typename T>
class ExpertOp : public Op<T> {
 public:
  // expert_names: one per expert, used as metric labels ("l1.shared.0").
  ExpertOp(std::string name, std::vector<std::string> expert_names, const ExpertSpec& spec, int in,
           int out, Rng* rng)
      : name_(std::move(name)), expert_names_(std::move(expert_names)), group_(name_, spec, rng),
        in_(in), out_(out) {}
  void Forward(Buffers<T>* b, bool training) override {
    group_.Forward(b->value[in_], training, &b->value[out_]);
  }
  void Backward(Buffers<T>* b) override { group_.Backward(b->value[in_], b->grad[out_], &b->grad[in_]); }
  void CollectParams(std::vector<Param<T>*>* out) override { group_.CollectParams(out); }
  void CollectBuffers(std::vector<RowVec<T>*>* out) override { group_.CollectBuffers(out); }

  const std::string& name() const { return name_; }
  const std::vector<std::string>& expert_names() const { return expert_names_; }
  ExpertGroup<T>& group() { return group_; }
  const ExpertGroup<T>& group() const { return group_; }
  int out() const { return out_; }

 private:
  std::string name_;
  std::vector<std::string> expert_names_;
  ExpertGroup<T> group_;
  int in_, out_;
};

// One expert as seen by a gate: expert `index` of the ExpertOp writing `buffer`.
struct ExpertRef {
  int op = 0;      // index of the ExpertOp in Model::expert_ops()
  int buffer = 0;  // that op's output buffer
  int index = 0;   // expert within the group
};

template <typename T>
class GateOp : public Op<T> {
 public:
  // task: the task this gate serves, or -1 (shared / meta-category gates).
  // accumulate: out += mixture (self gate) instead of out = mixture.
  GateOp(std::string name, int selector, std::vector<ExpertRef> experts, int d, int out, int task,
         typename MixtureGate<T>::Kind kind, bool accumulate, bool bias, int selector_width,
         Rng* rng)
      : name_(std::move(name)),
        gate_(name_, selector_width, static_cast<int>(experts.size()), kind, bias, rng),
        selector_(selector), experts_(std::move(experts)), d_(d), out_(out), task_(task),
        accumulate_(accumulate) {}

  void Forward(Buffers<T>* b, bool training) override {
    gate_.Forward(b->value[selector_], Views(b), d_, accumulate_, &b->value[out_]);
  }
  void Backward(Buffers<T>* b) override {
    gate_.Backward(b->value[selector_], Views(b), d_, b->grad[out_], &b->grad[selector_]);
  }
  void CollectParams(std::vector<Param<T>*>* out) override { gate_.CollectParams(out); }

  const std::string& name() const { return name_; }
  const MixtureGate<T>& gate() const { return gate_; }
  const std::vector<ExpertRef>& experts() const { return experts_; }
  int task() const { return task_; }
  bool is_self_gate() const { return accumulate_; }

 private:
  std::vector<typename MixtureGate<T>::ExpertView> Views(Buffers<T>* b) const {
    std::vector<typename MixtureGate<T>::ExpertView> v;
    for (const ExpertRef& e : experts_)
      v.push_back({&b->value[e.buffer], &b->grad[e.buffer], e.index * d_});
    return v;
  }

  std::string name_;
  MixtureGate<T> gate_;
  int selector_;
  std::vector<ExpertRef> experts_;
  int d_, out_, task_;
  bool accumulate_;
};

template <typename T>
class SelectOp : public Op<T> {
 public:
  SelectOp(ExpertRef expert, int d, int out) : expert_(expert), d_(d), out_(out) {}
  void Forward(Buffers<T>* b, bool) override {
    b->value[out_] = b->value[expert_.buffer].middleCols(expert_.index * d_, d_);
  }
  void Backward(Buffers<T>* b) override {
    b->grad[expert_.buffer].middleCols(expert_.index * d_, d_) += b->grad[out_];
  }

 private:
  ExpertRef expert_;
  int d_, out_;
};

template <typename T>
class ConcatOp : public Op<T> {
 public:
  ConcatOp(int a, int b, int out) : a_(a), b_(b), out_(out) {}
  void Forward(Buffers<T>* b, bool) override {
    const Mat<T>& x = b->value[a_];
    const Mat<T>& y = b->value[b_];
    Mat<T>& o = b->value[out_];
    o.resize(x.rows(), x.cols() + y.cols());
    o.leftCols(x.cols()) = x;
    o.rightCols(y.cols()) = y;
  }
  void Backward(Buffers<T>* b) override {
    const Mat<T>& g = b->grad[out_];
    b->grad[a_] += g.leftCols(b->value[a_].cols());
    b->grad[b_] += g.rightCols(b->value[b_].cols());
  }

 private:
  int a_, b_, out_;
};

template <typename T>
class TowerOp : public Op<T> {
 public:
  TowerOp(std::string name, const std::vector<int>& widths, Act act, int in, int out, Rng* rng)
      : mlp_(name, widths, act, /*last_linear=*/true, rng), in_(in), out_(out) {}
  void Forward(Buffers<T>* b, bool) override { mlp_.Forward(b->value[in_], &b->value[out_]); }
  void Backward(Buffers<T>* b) override { mlp_.Backward(b->value[in_], b->grad[out_], &b->grad[in_]); }
  void CollectParams(std::vector<Param<T>*>* out) override { mlp_.CollectParams(out); }

 private:
  Mlp<T> mlp_;
  int in_, out_;
};

}  // namespace freshet::cpu
