// KvStore over RocksDB; see kv_store.h.
#include "store/kv_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "common/logging.h"

namespace freshet::store {
namespace {

// Maps a RocksDB status to ours, naming the database and a next step.
Status FromRocks(const rocksdb::Status& s, const std::string& what, const std::string& path) {
  if (s.ok()) return Status::Ok();
  const std::string msg = what + " on " + path + ": " + s.ToString();
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return UnavailableError(msg + " (another process holds this database open; stop it or use another store.data_dir)");
  }
  if (s.IsCorruption()) return DataLossError(msg + " (the database is corrupt; restore a checkpoint or remove it to rebuild from Kafka)");
  if (s.IsIOError()) return UnavailableError(msg + " (check disk space and permissions of the directory)");
  if (s.IsNotFound()) return NotFoundError(msg);
  if (s.IsInvalidArgument()) return InvalidArgumentError(msg);
  return InternalError(msg);
}

}  // namespace

void WriteBatch::Put(std::string_view family, std::string_view key, std::string_view value) {
  ops_.push_back({Op::kPut, std::string(family), std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void WriteBatch::Delete(std::string_view family, std::string_view key) {
  ops_.push_back({Op::kDelete, std::string(family), std::string(key), {}});
  bytes_ += key.size();
}

void WriteBatch::DeleteRange(std::string_view family, std::string_view begin, std::string_view end) {
  ops_.push_back({Op::kDeleteRange, std::string(family), std::string(begin), std::string(end)});
  bytes_ += begin.size() + end.size();
}

void WriteBatch::Merge(std::string_view family, std::string_view key, std::string_view operand) {
  ops_.push_back({Op::kMerge, std::string(family), std::string(key), std::string(operand)});
  bytes_ += key.size() + operand.size();
}

void WriteBatch::Clear() {
  ops_.clear();
  bytes_ = 0;
}

struct KvStore::Impl {
  Options options;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> by_name;
  mutable std::mutex mu;
  Status sticky;  // guarded by mu

  StatusOr<rocksdb::ColumnFamilyHandle*> Family(std::string_view name) const {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return InvalidArgumentError("column family '" + std::string(name) + "' was not opened in " + options.path +
                                  " (list it in KvStore::Options::families)");
    }
    return it->second;
  }

  ~Impl() {
    if (db) {
      for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
      rocksdb::Status s = db->Close();
      if (!s.ok()) LOG_WARNING("kv_store_close").Kv("path", options.path).Kv("status", s.ToString());
    }
  }
};

StatusOr<std::unique_ptr<KvStore>> KvStore::Open(const Options& options) {
  if (options.path.empty()) return InvalidArgumentError("KvStore needs a path (store.data_dir)");
  const bool secondary = !options.secondary_path.empty();
  std::error_code ec;
  if (secondary) {
    std::filesystem::create_directories(options.secondary_path, ec);
    if (ec) return UnavailableError("cannot create secondary directory " + options.secondary_path + ": " + ec.message());
  } else if (options.create_if_missing) {
    std::filesystem::create_directories(options.path, ec);
    if (ec) {
      return UnavailableError("cannot create store directory " + options.path + ": " + ec.message() +
                              " (check permissions or set store.data_dir)");
    }
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 3;

  rocksdb::ColumnFamilyOptions cf_options;
  rocksdb::BlockBasedTableOptions table;
  if (options.block_cache_bytes > 0) table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // Open every family the database already has plus the requested ones.
  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName};
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing).ok()) {
    for (const auto& n : existing) {
      if (n != rocksdb::kDefaultColumnFamilyName) names.push_back(n);
    }
  }
  for (const auto& n : options.families) {
    if (std::find(names.begin(), names.end(), n) != names.end()) continue;
    if (secondary)
      return NotFoundError("column family '" + n + "' is not in " + options.path +
                           " (a secondary cannot create it; start the process that writes the store first)");
    names.push_back(n);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) {
    descriptors.emplace_back(n, cf_options);
    auto merge = options.merge_operators.find(n);
    if (merge != options.merge_operators.end()) descriptors.back().options.merge_operator = merge->second;
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (secondary) {
    db_options.create_if_missing = false;
    db_options.max_open_files = -1;  // RocksDB requires it of a secondary
    s = rocksdb::DB::OpenAsSecondary(db_options, options.path, options.secondary_path, descriptors, &impl->handles,
                                     &raw);
  } else {
    s = rocksdb::DB::Open(db_options, options.path, descriptors, &impl->handles, &raw);
  }
  if (!s.ok()) return FromRocks(s, secondary ? "open database as secondary" : "open database", options.path);
  impl->db.reset(raw);
  for (size_t i = 0; i < names.size(); ++i) impl->by_name[names[i]] = impl->handles[i];
  return std::unique_ptr<KvStore>(new KvStore(std::move(impl)));
}

KvStore::KvStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvStore::~KvStore() = default;

Status KvStore::Write(const WriteBatch& batch) {
  if (!impl_->options.secondary_path.empty())
    return FailedPreconditionError(impl_->options.path + " is open as a read-only secondary; write through its primary");
  RETURN_IF_ERROR(health());
  rocksdb::WriteBatch wb;
  for (const auto& op : batch.ops()) {
    ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->Family(op.family));
    if (op.kind == WriteBatch::Op::kMerge && impl_->options.merge_operators.count(op.family) == 0) {
      return InvalidArgumentError("merge into column family '" + op.family + "' of " + impl_->options.path +
                                  ", which has no merge operator (set KvStore::Options::merge_operators)");
    }
    rocksdb::Status s;
    switch (op.kind) {
      case WriteBatch::Op::kPut: s = wb.Put(cf, op.key, op.value); break;
      case WriteBatch::Op::kDelete: s = wb.Delete(cf, op.key); break;
      case WriteBatch::Op::kDeleteRange: s = wb.DeleteRange(cf, op.key, op.value); break;
      case WriteBatch::Op::kMerge: s = wb.Merge(cf, op.key, op.value); break;
    }
    if (!s.ok()) return FromRocks(s, "build write batch", impl_->options.path);
  }
  rocksdb::WriteOptions wo;
  wo.sync = impl_->options.sync_writes;
  Status result = FromRocks(impl_->db->Write(wo, &wb), "write batch", impl_->options.path);
  if (!result.ok()) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->sticky.ok()) impl_->sticky = result;
    LOG_ERROR("kv_store_write_failed").Kv("path", impl_->options.path).Kv("status", result.ToString());
  }
  return result;
}

StatusOr<std::optional<std::string>> KvStore::Get(std::string_view family, std::string_view key) const {
  ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->Family(family));
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), cf, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get", impl_->options.path);
  return std::optional<std::string>(std::move(value));
}

StatusOr<std::vector<std::optional<std::string>>> KvStore::MultiGet(std::string_view family,
                                                                    const std::vector<std::string>& keys) const {
  ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->Family(family));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::ColumnFamilyHandle*> cfs(keys.size(), cf);
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses = impl_->db->MultiGet(rocksdb::ReadOptions(), cfs, slices, &values);
  std::vector<std::optional<std::string>> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return FromRocks(statuses[i], "multiget", impl_->options.path);
    out[i] = std::move(values[i]);
  }
  return out;
}

Status KvStore::ScanPrefix(std::string_view family, std::string_view prefix,
                           const std::function<bool(std::string_view, std::string_view)>& fn) const {
  ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->Family(family));
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, cf));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (!k.starts_with(rocksdb::Slice(prefix.data(), prefix.size()))) break;
    rocksdb::Slice v = it->value();
    if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
  }
  return FromRocks(it->status(), "scan", impl_->options.path);
}

Status KvStore::Checkpoint(const std::string& dir) const {
  if (std::filesystem::exists(dir)) {
    return AlreadyExistsError("checkpoint directory " + dir + " already exists (choose a new directory)");
  }
  rocksdb::Checkpoint* cp = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(impl_->db.get(), &cp), "create checkpoint", impl_->options.path));
  std::unique_ptr<rocksdb::Checkpoint> owned(cp);
  return FromRocks(owned->CreateCheckpoint(dir), "write checkpoint to " + dir, impl_->options.path);
}

Status KvStore::Flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(impl_->db->Flush(fo, impl_->handles), "flush", impl_->options.path);
}

Status KvStore::TryCatchUpWithPrimary() {
  if (impl_->options.secondary_path.empty())
    return FailedPreconditionError(impl_->options.path + " is a primary; only a secondary catches up");
  return FromRocks(impl_->db->TryCatchUpWithPrimary(), "catch up with primary", impl_->options.path);
}

uint64_t KvStore::LatestSequence() const { return impl_->db->GetLatestSequenceNumber(); }

Status KvStore::health() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sticky;
}

const std::string& KvStore::path() const { return impl_->options.path; }

std::vector<std::string> KvStore::families() const {
  std::vector<std::string> out;
  for (const auto& [name, h] : impl_->by_name) out.push_back(name);
  return out;
}

int64_t KvStore::EstimateKeys(std::string_view family) const {
  auto cf = impl_->Family(family);
  if (!cf.ok()) return 0;
  uint64_t n = 0;
  impl_->db->GetIntProperty(*cf, "rocksdb.estimate-num-keys", &n);
  return static_cast<int64_t>(n);
}

}  // namespace freshet::store
