// Dense Adam/Adagrad and sparse Adagrad/FTRL; formulas in optimizer.h.
#include "learner/cpu/optimizer.h"

#include <cmath>

#include "common/check.h"

namespace freshet::cpu {

template <typename T>
DenseOptimizer<T>::DenseOptimizer(const DenseOptimizerConfig& config, const std::vector<Param<T>*>& params)
    : config_(config), params_(params) {
  const bool adam = config.type() == DENSE_ADAM;
  for (Param<T>* p : params_) {
    const T init = adam ? T(0) : T(config.initial_accumulator());
    m_.push_back(Mat<T>::Constant(p->value.rows(), p->value.cols(), init));
    if (adam) v_.push_back(Mat<T>::Zero(p->value.rows(), p->value.cols()));
  }
}

template <typename T>
void DenseOptimizer<T>::Step() {
  ++t_;
  const T lr = T(config_.learning_rate()), eps = T(config_.epsilon());
  if (config_.type() == DENSE_ADAM) {
    const T b1 = T(config_.beta1()), b2 = T(config_.beta2());
    const T c1 = T(1) - std::pow(b1, T(t_)), c2 = T(1) - std::pow(b2, T(t_));
    for (size_t i = 0; i < params_.size(); ++i) {
      auto g = params_[i]->grad.array();
      m_[i].array() = b1 * m_[i].array() + (T(1) - b1) * g;
      v_[i].array() = b2 * v_[i].array() + (T(1) - b2) * g.square();
      params_[i]->value.array() -= lr * (m_[i].array() / c1) / ((v_[i].array() / c2).sqrt() + eps);
    }
  } else {
    for (size_t i = 0; i < params_.size(); ++i) {
      auto g = params_[i]->grad.array();
      m_[i].array() += g.square();
      params_[i]->value.array() -= lr * g / (m_[i].array().sqrt() + eps);
    }
  }
}

template <typename T>
void DenseOptimizer<T>::Save(ByteWriter* w) const {
  w->Put<int32_t>(config_.type());
  w->Put<int64_t>(t_);
  for (const auto& m : m_) w->PutArray(m.data(), m.size());
  for (const auto& v : v_) w->PutArray(v.data(), v.size());
}

template <typename T>
Status DenseOptimizer<T>::Load(ByteReader* r) {
  int32_t type = 0;
  RETURN_IF_ERROR(r->Get(&type));
  if (type != config_.type()) return InvalidArgumentError("optimizer state was saved by another dense optimizer type");
  RETURN_IF_ERROR(r->Get(&t_));
  for (auto& m : m_) RETURN_IF_ERROR(r->GetArray(m.data(), m.size()));
  for (auto& v : v_) RETURN_IF_ERROR(r->GetArray(v.data(), v.size()));
  return Status::Ok();
}

template <typename T>
void SparseOptimizer<T>::Step(EmbeddingTable<T>* table,
                              const std::vector<typename Model<T>::SparseGrad>& grads) {
  for (size_t s = 0; s < grads.size(); ++s) {
    const int dim = table->dim(static_cast<int>(s));
    for (size_t u = 0; u < grads[s].rows.size(); ++u) {
      const RowId row = grads[s].rows[u];
      T* w = table->Weights(row);
      T* state = table->State(row);
      const T* g = grads[s].grad.row(u).data();
      if (config_.type() == SPARSE_ADAGRAD) {
        const T lr = T(config_.learning_rate()), eps = T(config_.epsilon());
        for (int i = 0; i < dim; ++i) {
          state[i] += g[i] * g[i];
          w[i] -= lr * g[i] / (std::sqrt(state[i]) + eps);
        }
      } else {
        const T alpha = T(config_.ftrl_alpha()), beta = T(config_.ftrl_beta());
        const T l1 = T(config_.ftrl_l1()), l2 = T(config_.ftrl_l2());
        T* z = state;        // [0, dim)
        T* n = state + dim;  // [dim, 2·dim)
        for (int i = 0; i < dim; ++i) {
          const T sigma = (std::sqrt(n[i] + g[i] * g[i]) - std::sqrt(n[i])) / alpha;
          z[i] += g[i] - sigma * w[i];
          n[i] += g[i] * g[i];
          w[i] = std::abs(z[i]) <= l1
                     ? T(0)
                     : -(z[i] - (z[i] > 0 ? l1 : -l1)) / ((beta + std::sqrt(n[i])) / alpha + l2);
        }
      }
    }
  }
}

FRESHET_INSTANTIATE(DenseOptimizer)
FRESHET_INSTANTIATE(SparseOptimizer)

}  // namespace freshet::cpu
