// ModelUpdate ⇄ CPU model: FULL/DELTA cutting and applying onto a serving copy.
#include "publisher/model_update.h"

#include <cstdio>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "common/check.h"
#include "learner/checkpoint_store.h"
#include "learner/cpu/model_builder.h"

namespace freshet::publisher {
namespace {

constexpr const char* kBnPrefix = "bn_state.";

struct Fnv {
  uint64_t h = 0xcbf29ce484222325ull;
  void Bytes(const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 0x100000001b3ull;
  }
  void Int(int64_t v) { Bytes(&v, sizeof v); }
  void Str(const std::string& s) {
    Int(static_cast<int64_t>(s.size()));
    Bytes(s.data(), s.size());
  }
};

void AddDense(const cpu::Param<float>& p, ModelUpdate* u) {
  DenseTensor* t = u->add_dense();
  t->set_name(p.name);
  t->add_shape(p.value.rows());
  t->add_shape(p.value.cols());
  t->mutable_values()->Add(p.value.data(), p.value.data() + p.value.size());
}

void AddBnBuffers(const ServingModel& model, ModelUpdate* u) {
  const auto& buffers = model.state_buffers();
  for (size_t i = 0; i < buffers.size(); ++i) {
    DenseTensor* t = u->add_dense();
    t->set_name(kBnPrefix + std::to_string(i));
    t->add_shape(buffers[i]->size());
    t->mutable_values()->Add(buffers[i]->data(), buffers[i]->data() + buffers[i]->size());
  }
}

// Per-slot SparseRows messages, created on first use, in slot order of first use.
class RowsBySlot {
 public:
  RowsBySlot(const ServingModel& model, ModelUpdate* u) : model_(model), u_(u) {}
  void Add(const cpu::EmbeddingKey& key, const float* w) {
    auto [it, inserted] = index_.try_emplace(key.slot, u_->sparse_size());
    if (inserted) {
      SparseRows* r = u_->add_sparse();
      r->set_slot(static_cast<uint32_t>(key.slot));
      r->set_dim(static_cast<uint32_t>(model_.embeddings().dim(key.slot)));
    }
    SparseRows* r = u_->mutable_sparse(it->second);
    r->add_ids(key.id);
    r->mutable_values()->Add(w, w + r->dim());
    ++count_;
  }
  uint64_t count() const { return count_; }

 private:
  const ServingModel& model_;
  ModelUpdate* u_;
  std::map<int32_t, int> index_;
  uint64_t count_ = 0;
};

struct KeyHash {
  size_t operator()(const cpu::EmbeddingKey& k) const {
    return std::hash<uint64_t>()(k.id * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(k.slot));
  }
};

void StampManifest(const ServingModel& model, UpdateKind kind, ModelManifest* m) {
  m->set_kind(kind);
  m->set_model_fingerprint(ModelFingerprint(model));
  m->set_dense_crc32c(DenseCrc32c(model));
}

Status ApplyDense(const DenseTensor& t, ServingModel* model,
                  const std::unordered_map<std::string, cpu::Param<float>*>& params, std::vector<bool>* seen_params,
                  std::vector<bool>* seen_bn) {
  auto shape_text = [&] {
    std::string s;
    for (int64_t d : t.shape()) s += (s.empty() ? "" : "x") + std::to_string(d);
    return "[" + s + "]";
  };
  float* dst = nullptr;
  int64_t size = 0;
  if (t.name().rfind(kBnPrefix, 0) == 0) {
    const std::string index_text = t.name().substr(std::char_traits<char>::length(kBnPrefix));
    size_t index = 0;
    try {
      index = std::stoul(index_text);
    } catch (...) {
      return InvalidArgumentError("update tensor " + t.name() + " has no BN buffer index");
    }
    const auto& buffers = model->state_buffers();
    if (index >= buffers.size())
      return InvalidArgumentError("update tensor " + t.name() + ": the model has " +
                                  std::to_string(buffers.size()) + " BN buffers");
    if (t.shape_size() != 1 || t.shape(0) != buffers[index]->size())
      return InvalidArgumentError("update tensor " + t.name() + " has shape " + shape_text() + ", model [" +
                                  std::to_string(buffers[index]->size()) + "]");
    dst = buffers[index]->data();
    size = buffers[index]->size();
    (*seen_bn)[index] = true;
  } else {
    auto it = params.find(t.name());
    if (it == params.end()) return InvalidArgumentError("update tensor " + t.name() + " is not a model parameter");
    cpu::Param<float>* p = it->second;
    if (t.shape_size() != 2 || t.shape(0) != p->value.rows() || t.shape(1) != p->value.cols())
      return InvalidArgumentError("update tensor " + t.name() + " has shape " + shape_text() + ", model [" +
                                  std::to_string(p->value.rows()) + "x" + std::to_string(p->value.cols()) + "]");
    dst = p->value.data();
    size = p->value.size();
    for (size_t i = 0; i < model->params().size(); ++i)
      if (model->params()[i] == p) (*seen_params)[i] = true;
  }
  if (t.values_size() != size)
    return InvalidArgumentError("update tensor " + t.name() + " has " + std::to_string(t.values_size()) +
                                " values, shape says " + std::to_string(size));
  std::copy(t.values().begin(), t.values().end(), dst);
  return Status::Ok();
}

Status CheckSlot(const ServingModel& model, uint32_t slot, const char* what) {
  if (slot >= static_cast<uint32_t>(model.embeddings().num_slots()))
    return InvalidArgumentError(std::string(what) + " of slot index " + std::to_string(slot) + ": the model has " +
                                std::to_string(model.embeddings().num_slots()) + " sparse slots");
  return Status::Ok();
}

}  // namespace

std::string ModelFingerprint(const ServingModel& model) {
  Fnv f;
  for (const cpu::Param<float>* p : model.params()) {
    f.Str(p->name);
    f.Int(p->value.rows());
    f.Int(p->value.cols());
  }
  for (const cpu::RowVec<float>* b : model.state_buffers()) f.Int(b->size());
  for (int s = 0; s < model.embeddings().num_slots(); ++s) f.Int(model.embeddings().dim(s));
  for (const cpu::TaskSpec& t : model.tasks()) {
    f.Str(t.name);
    f.Int(static_cast<int64_t>(t.kind));
  }
  f.Int(model.input_dim());
  char buf[32];
  std::snprintf(buf, sizeof buf, "shape-%016llx", static_cast<unsigned long long>(f.h));
  return buf;
}

uint32_t DenseCrc32c(const ServingModel& model) {
  uint32_t crc = 0;
  for (const cpu::Param<float>* p : model.params())
    crc = learner::Crc32c(p->value.data(), p->value.size() * sizeof(float), crc);
  return crc;
}

ModelUpdate MakeFullUpdate(const ServingModel& model, ModelManifest manifest) {
  ModelUpdate u;
  for (const cpu::Param<float>* p : model.params()) AddDense(*p, &u);
  AddBnBuffers(model, &u);
  RowsBySlot rows(model, &u);
  model.embeddings().ForEachRow([&](const cpu::EmbeddingKey& key, const float* w) { rows.Add(key, w); });
  manifest.set_base_version(0);
  manifest.set_sparse_rows_added(rows.count());
  manifest.set_sparse_rows_updated(0);
  manifest.set_sparse_rows_deleted(0);
  StampManifest(model, UPDATE_FULL, &manifest);
  *u.mutable_manifest() = std::move(manifest);
  return u;
}

ModelUpdate MakeDeltaUpdate(const ServingModel& model, ModelManifest manifest, const DeltaContent& content) {
  ModelUpdate u;
  for (const cpu::Param<float>* p : model.params()) AddDense(*p, &u);
  AddBnBuffers(model, &u);
  // Evictions, grouped per slot.
  std::map<int32_t, EvictedRows*> evicted;
  std::unordered_set<cpu::EmbeddingKey, KeyHash> seen;
  for (const cpu::EmbeddingKey& key : content.evicted) {
    if (!seen.insert(key).second) continue;
    EvictedRows*& e = evicted[key.slot];
    if (e == nullptr) {
      e = u.add_evicted();
      e->set_slot(static_cast<uint32_t>(key.slot));
    }
    e->add_ids(key.id);
  }
  manifest.set_sparse_rows_deleted(seen.size());
  seen.clear();
  RowsBySlot rows(model, &u);
  const auto& table = model.embeddings();
  for (const cpu::EmbeddingKey& key : content.touched) {
    const cpu::RowId row = table.Lookup(key.slot, key.id);
    if (!row.valid() || !seen.insert(key).second) continue;
    rows.Add(key, table.Weights(row));
  }
  manifest.set_sparse_rows_added(0);
  manifest.set_sparse_rows_updated(rows.count());
  StampManifest(model, UPDATE_DELTA, &manifest);
  *u.mutable_manifest() = std::move(manifest);
  return u;
}

Status ApplyUpdate(const ModelUpdate& update, ServingModel* model) {
  const ModelManifest& m = update.manifest();
  const std::string fingerprint = ModelFingerprint(*model);
  if (m.model_fingerprint() != fingerprint)
    return FailedPreconditionError("update for version " + std::to_string(m.version()) + " has model fingerprint '" +
                                   m.model_fingerprint() + "', this model is '" + fingerprint +
                                   "': publisher and serving run different model configs (learner.model, tasks)");
  const bool full = m.kind() == UPDATE_FULL;
  if (!full && m.kind() != UPDATE_DELTA)
    return InvalidArgumentError("update for version " + std::to_string(m.version()) + " has no kind (FULL/DELTA)");
  auto& table = model->embeddings();
  if (full && table.stats().rows != 0)
    return FailedPreconditionError("a FULL update applies onto an empty serving model only");

  std::unordered_map<std::string, cpu::Param<float>*> params;
  for (cpu::Param<float>* p : model->params()) params[p->name] = p;
  std::vector<bool> seen_params(model->params().size(), false), seen_bn(model->state_buffers().size(), false);
  for (const DenseTensor& t : update.dense()) RETURN_IF_ERROR(ApplyDense(t, model, params, &seen_params, &seen_bn));
  if (full) {
    for (size_t i = 0; i < seen_params.size(); ++i)
      if (!seen_params[i])
        return InvalidArgumentError("FULL update for version " + std::to_string(m.version()) + " lacks parameter " +
                                    model->params()[i]->name);
    for (size_t i = 0; i < seen_bn.size(); ++i)
      if (!seen_bn[i])
        return InvalidArgumentError("FULL update for version " + std::to_string(m.version()) + " lacks " +
                                    kBnPrefix + std::to_string(i));
  }
  for (const EvictedRows& e : update.evicted()) {
    RETURN_IF_ERROR(CheckSlot(*model, e.slot(), "evicted rows"));
    for (uint64_t id : e.ids()) table.EraseRow(static_cast<int>(e.slot()), id);
  }
  for (const SparseRows& r : update.sparse()) {
    RETURN_IF_ERROR(CheckSlot(*model, r.slot(), "rows"));
    const int slot = static_cast<int>(r.slot());
    const int dim = table.dim(slot);
    if (r.dim() != static_cast<uint32_t>(dim))
      return InvalidArgumentError("rows of slot index " + std::to_string(slot) + " have width " +
                                  std::to_string(r.dim()) + ", the model's is " + std::to_string(dim));
    if (static_cast<int64_t>(r.values_size()) != static_cast<int64_t>(r.ids_size()) * dim)
      return InvalidArgumentError("rows of slot index " + std::to_string(slot) + ": " +
                                  std::to_string(r.values_size()) + " values for " + std::to_string(r.ids_size()) +
                                  " ids of width " + std::to_string(dim));
    for (int i = 0; i < r.ids_size(); ++i) table.UpsertRow(slot, r.ids(i), r.values().data() + static_cast<size_t>(i) * dim);
  }
  const uint32_t crc = DenseCrc32c(*model);
  if (crc != m.dense_crc32c())
    return DataLossError("after applying version " + std::to_string(m.version()) +
                         " the dense parameters' CRC32C does not match the manifest's (base content differs or the "
                         "update is corrupt)");
  return Status::Ok();
}

StatusOr<std::unique_ptr<ServingModel>> BuildServingModel(const LearnerConfig& learner,
                                                          const std::vector<TaskConfig>& tasks) {
  LearnerConfig config = learner;
  EmbeddingTableConfig* e = config.mutable_embedding();
  e->set_min_count(1);
  e->set_cms_width(1);
  e->set_cms_depth(1);
  e->set_ttl_ms(0);
  e->set_max_bytes(0);
  ASSIGN_OR_RETURN(std::vector<cpu::TaskSpec> specs, cpu::TaskSpecsFromConfig(tasks));
  return cpu::BuildModel<float>(config, specs);
}

void CopyModel(const ServingModel& from, ServingModel* to) {
  CHECK_EQ(from.params().size(), to->params().size());
  CHECK_EQ(from.state_buffers().size(), to->state_buffers().size());
  CHECK_EQ(to->embeddings().stats().rows, 0);
  for (size_t i = 0; i < from.params().size(); ++i) to->params()[i]->value = from.params()[i]->value;
  for (size_t i = 0; i < from.state_buffers().size(); ++i) *to->state_buffers()[i] = *from.state_buffers()[i];
  auto& table = to->embeddings();
  from.embeddings().ForEachRow(
      [&](const cpu::EmbeddingKey& key, const float* w) { table.UpsertRow(key.slot, key.id, w); });
}

}  // namespace freshet::publisher
