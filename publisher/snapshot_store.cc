// SnapshotStore: chunked, CRC-checked model versions with manifest-last writes,
// retention by full snapshots, and materialization of FULL + deltas.
#include "publisher/snapshot_store.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <unordered_map>

#include "common/logging.h"
#include "learner/checkpoint_store.h"
#include "learner/cpu/serialize.h"
#include "store/kv_store.h"
#include "store/versioned_blobs.h"

namespace freshet::publisher {
namespace {

constexpr uint64_t kInfoMagic = 0x3150414E53524646ull;  // "FFRSNAP1"
constexpr const char* kPinKey = "z/pin";

using store::VersionKey;
std::string Where(uint64_t v) { return "snapshot v" + std::to_string(v); }

// One slot's rows while materializing: insertion-ordered values with an id index.
struct SlotRows {
  uint32_t dim = 0;
  std::unordered_map<uint64_t, size_t> index;  // id → row in ids/values
  std::vector<uint64_t> ids;
  std::vector<float> values;
  std::vector<bool> live;
};

Status LoadRows(const ModelUpdate& u, std::map<uint32_t, SlotRows>* slots) {
  for (const SparseRows& block : u.sparse()) {
    SlotRows& s = (*slots)[block.slot()];
    if (s.dim == 0) s.dim = block.dim();
    if (block.dim() != s.dim || block.dim() == 0)
      return InvalidArgumentError("slot " + std::to_string(block.slot()) + " rows of width " +
                                  std::to_string(block.dim()) + " where " + std::to_string(s.dim) + " expected");
    if (static_cast<size_t>(block.values_size()) != static_cast<size_t>(block.ids_size()) * block.dim())
      return InvalidArgumentError("slot " + std::to_string(block.slot()) + ": values do not match ids × dim");
    for (int i = 0; i < block.ids_size(); ++i) {
      const float* src = block.values().data() + static_cast<size_t>(i) * block.dim();
      auto [it, inserted] = s.index.emplace(block.ids(i), s.ids.size());
      if (inserted) {
        s.ids.push_back(block.ids(i));
        s.values.insert(s.values.end(), src, src + block.dim());
        s.live.push_back(true);
      } else {
        std::copy(src, src + block.dim(), s.values.begin() + it->second * s.dim);
        s.live[it->second] = true;
      }
    }
  }
  return Status::Ok();
}

// Calls `fn` with each stored manifest, ascending by version. DataLoss naming the key
// of a manifest that does not parse.
Status ForEachManifest(const store::KvStore& store, const std::function<void(ModelManifest)>& fn) {
  Status parse = Status::Ok();
  RETURN_IF_ERROR(store.ScanPrefix(SnapshotStore::kFamily, "m/", [&](std::string_view key, std::string_view value) {
    ModelManifest m;
    if (!m.ParseFromString(std::string(value))) {
      parse = DataLossError("snapshot manifest " + std::string(key) + " is unreadable");
      return false;
    }
    fn(std::move(m));
    return true;
  }));
  return parse;
}

}  // namespace

Status ApplyUpdateToFull(const ModelUpdate& delta, ModelUpdate* full) {
  if (delta.manifest().kind() == UPDATE_FULL) {
    *full = delta;
    full->clear_evicted();
  } else {
    std::unordered_map<std::string, DenseTensor*> dense;
    for (DenseTensor& t : *full->mutable_dense()) dense[t.name()] = &t;
    for (const DenseTensor& t : delta.dense()) {
      auto it = dense.find(t.name());
      if (it == dense.end()) {
        *full->add_dense() = t;
        continue;
      }
      if (it->second->values_size() != t.values_size())
        return InvalidArgumentError("dense tensor " + t.name() + " changed size in v" +
                                    std::to_string(delta.manifest().version()));
      *it->second = t;
    }
  }
  std::map<uint32_t, SlotRows> slots;
  RETURN_IF_ERROR(LoadRows(*full, &slots));
  if (delta.manifest().kind() != UPDATE_FULL) {
    for (const EvictedRows& e : delta.evicted()) {
      auto s = slots.find(e.slot());
      if (s == slots.end()) continue;
      for (uint64_t id : e.ids())
        if (auto it = s->second.index.find(id); it != s->second.index.end()) s->second.live[it->second] = false;
    }
    RETURN_IF_ERROR(LoadRows(delta, &slots));
  }
  *full->mutable_manifest() = delta.manifest();
  full->clear_sparse();
  full->clear_evicted();
  uint64_t rows = 0;
  for (auto& [slot, s] : slots) {
    std::vector<size_t> order;
    for (size_t i = 0; i < s.ids.size(); ++i)
      if (s.live[i]) order.push_back(i);
    if (order.empty()) continue;
    std::sort(order.begin(), order.end(), [&s](size_t a, size_t b) { return s.ids[a] < s.ids[b]; });
    SparseRows* out = full->add_sparse();
    out->set_slot(slot);
    out->set_dim(s.dim);
    out->mutable_ids()->Reserve(static_cast<int>(order.size()));
    out->mutable_values()->Reserve(static_cast<int>(order.size() * s.dim));
    for (size_t i : order) {
      out->add_ids(s.ids[i]);
      for (uint32_t d = 0; d < s.dim; ++d) out->add_values(s.values[i * s.dim + d]);
    }
    rows += order.size();
  }
  ModelManifest* m = full->mutable_manifest();
  m->set_kind(UPDATE_FULL);
  m->set_base_version(0);
  m->set_sparse_rows_added(rows);
  m->set_sparse_rows_updated(0);
  m->set_sparse_rows_deleted(0);
  return Status::Ok();
}

StatusOr<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(store::KvStore* store, int retain_full) {
  std::unique_ptr<SnapshotStore> s(new SnapshotStore(store, std::max(1, retain_full)));
  RETURN_IF_ERROR(ForEachManifest(*store, [&](ModelManifest m) { s->kinds_[m.version()] = m.kind(); })
                      .Annotate("snapshot store " + store->path()));
  ASSIGN_OR_RETURN(std::optional<std::string> pin, store->Get(kFamily, kPinKey));
  if (pin && !pin->empty()) s->pinned_ = std::strtoull(pin->c_str(), nullptr, 10);
  return s;
}

uint64_t SnapshotStore::newest_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kinds_.empty() ? 0 : kinds_.rbegin()->first;
}

std::optional<uint64_t> SnapshotStore::newest_full_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = kinds_.rbegin(); it != kinds_.rend(); ++it)
    if (it->second == UPDATE_FULL) return it->first;
  return std::nullopt;
}

std::optional<uint64_t> SnapshotStore::pinned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pinned_;
}

uint64_t SnapshotStore::RetentionCut(uint64_t version, UpdateKind kind) const {
  std::vector<uint64_t> fulls;  // descending, including the one being written
  if (kind == UPDATE_FULL) fulls.push_back(version);
  for (auto it = kinds_.rbegin(); it != kinds_.rend(); ++it)
    if (it->second == UPDATE_FULL) fulls.push_back(it->first);
  if (fulls.size() <= static_cast<size_t>(retain_full_)) return 0;
  uint64_t cut = fulls[retain_full_ - 1];
  if (pinned_) {
    // Keep the pinned version's chain: its FULL and everything after.
    for (uint64_t f : fulls)
      if (f <= *pinned_) {
        cut = std::min(cut, f);
        break;
      }
  }
  return cut;
}

Status SnapshotStore::Write(const ModelUpdate& update) {
  std::string payload;
  if (!update.SerializeToString(&payload))
    return InternalError(Where(update.manifest().version()) + ": cannot serialize the update");
  return Write(update, payload);
}

Status SnapshotStore::Write(const ModelUpdate& update, const std::string& payload) {
  const ModelManifest& m = update.manifest();
  const uint64_t version = m.version();
  if (m.kind() != UPDATE_FULL && m.kind() != UPDATE_DELTA)
    return InvalidArgumentError(Where(version) + ": kind must be FULL or DELTA");
  std::string manifest;
  if (!m.SerializeToString(&manifest)) return InternalError(Where(version) + ": cannot serialize the manifest");

  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t newest = kinds_.empty() ? 0 : kinds_.rbegin()->first;
  if (version <= newest)
    return InvalidArgumentError(Where(version) + ": versions must increase (newest stored is v" +
                                std::to_string(newest) + ")");
  store::WriteBatch batch;
  const uint64_t chunks = store::PutChunks(&batch, kFamily, 'p', version, payload);
  cpu::ByteWriter info;
  info.Put(kInfoMagic);
  info.Put<uint64_t>(chunks);
  info.Put<uint64_t>(payload.size());
  info.Put<uint32_t>(learner::Crc32c(payload.data(), payload.size()));
  batch.Put(kFamily, VersionKey('x', version), info.str());
  batch.Put(kFamily, VersionKey('m', version), manifest);
  const uint64_t cut = RetentionCut(version, m.kind());
  if (cut > 0)
    for (char kind : {'p', 'x', 'm'}) batch.DeleteRange(kFamily, VersionKey(kind, 0), VersionKey(kind, cut));
  RETURN_IF_ERROR(store_->Write(batch));
  kinds_[version] = m.kind();
  if (cut > 0) kinds_.erase(kinds_.begin(), kinds_.lower_bound(cut));
  return Status::Ok();
}

StatusOr<std::vector<ModelManifest>> SnapshotStore::List() const {
  std::vector<ModelManifest> out;
  RETURN_IF_ERROR(ForEachManifest(*store_, [&](ModelManifest m) { out.push_back(std::move(m)); }));
  const std::optional<uint64_t> pin = pinned();
  for (ModelManifest& m : out) m.set_pinned(pin && *pin == m.version());
  return out;
}

StatusOr<ModelManifest> SnapshotStore::Manifest(uint64_t version) const {
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, store_->Get(kFamily, VersionKey('m', version)));
  if (!bytes) return NotFoundError(Where(version) + " is not in the snapshot store (see `freshet ops versions`)");
  ModelManifest m;
  if (!m.ParseFromString(*bytes)) return DataLossError(Where(version) + ": manifest unreadable");
  const std::optional<uint64_t> pin = pinned();
  m.set_pinned(pin && *pin == version);
  return m;
}

StatusOr<ModelUpdate> SnapshotStore::Read(uint64_t version) const {
  ASSIGN_OR_RETURN(std::optional<std::string> info, store_->Get(kFamily, VersionKey('x', version)));
  ASSIGN_OR_RETURN(std::optional<std::string> manifest, store_->Get(kFamily, VersionKey('m', version)));
  if (!manifest) return NotFoundError(Where(version) + " is not in the snapshot store (see `freshet ops versions`)");
  if (!info) return DataLossError(Where(version) + ": payload info missing");
  cpu::ByteReader r(*info);
  uint64_t magic = 0, chunks = 0, bytes = 0;
  uint32_t crc = 0;
  RETURN_IF_ERROR(r.Get(&magic));
  if (magic != kInfoMagic) return DataLossError(Where(version) + ": payload info has a bad magic");
  RETURN_IF_ERROR(r.Get(&chunks));
  RETURN_IF_ERROR(r.Get(&bytes));
  RETURN_IF_ERROR(r.Get(&crc));
  StatusOr<std::string> read = store::GetChunks(*store_, kFamily, 'p', version, chunks);
  if (!read.ok()) return read.status().Annotate(Where(version) + " payload");
  const std::string payload = std::move(read).value();
  if (payload.size() != bytes || learner::Crc32c(payload.data(), payload.size()) != crc)
    return DataLossError(Where(version) + ": payload does not match its CRC32C");
  ModelUpdate out;
  if (!out.ParseFromString(payload)) return DataLossError(Where(version) + ": payload does not parse");
  if (out.manifest().version() != version) return DataLossError(Where(version) + ": payload names another version");
  const std::optional<uint64_t> pin = pinned();
  out.mutable_manifest()->set_pinned(pin && *pin == version);
  return out;
}

StatusOr<ModelUpdate> SnapshotStore::Materialize(uint64_t version) const {
  std::vector<uint64_t> chain;  // the FULL, then deltas up to `version`
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = kinds_.find(version);
    if (it == kinds_.end()) return NotFoundError(Where(version) + " is not in the snapshot store (see `freshet ops versions`)");
    for (;; --it) {
      chain.push_back(it->first);
      if (it->second == UPDATE_FULL) break;
      if (it == kinds_.begin()) return NotFoundError(Where(version) + ": its full snapshot is no longer retained");
    }
  }
  std::reverse(chain.begin(), chain.end());
  ModelUpdate full;
  for (size_t i = 0; i < chain.size(); ++i) {
    ASSIGN_OR_RETURN(ModelUpdate u, Read(chain[i]));
    if (i > 0 && u.manifest().base_version() != chain[i - 1])
      return DataLossError(Where(chain[i]) + " is a delta onto v" + std::to_string(u.manifest().base_version()) +
                           ", not onto the stored v" + std::to_string(chain[i - 1]));
    RETURN_IF_ERROR(ApplyUpdateToFull(u, &full).Annotate(Where(chain[i])));
  }
  return full;
}

StatusOr<std::optional<ModelUpdate>> SnapshotStore::MaterializeNewest() const {
  std::vector<uint64_t> versions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [v, kind] : kinds_) versions.push_back(v);
  }
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    StatusOr<ModelUpdate> u = Materialize(*it);
    if (u.ok()) return std::optional<ModelUpdate>(std::move(u).value());
    LOG_WARNING("publisher_snapshot_unreadable").Kv("version", *it).Kv("error", u.status().ToString());
  }
  return std::optional<ModelUpdate>();
}

Status SnapshotStore::SetPin(std::optional<uint64_t> version) {
  std::lock_guard<std::mutex> lock(mu_);
  if (version && !kinds_.count(*version))
    return NotFoundError(Where(*version) + " is not in the snapshot store (see `freshet ops versions`)");
  store::WriteBatch batch;
  batch.Put(kFamily, kPinKey, version ? std::to_string(*version) : "");
  RETURN_IF_ERROR(store_->Write(batch));
  pinned_ = version;
  return Status::Ok();
}

}  // namespace freshet::publisher
