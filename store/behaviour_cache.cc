// BehaviourCache and its append-and-trim merge operator; see behaviour_cache.h.
#include "store/behaviour_cache.h"

#include <rocksdb/merge_operator.h>

#include <algorithm>
#include <cstring>

#include "common/check.h"

namespace freshet::store {
namespace {

// True when `v` is a format byte followed by whole records.
bool WellFormed(const rocksdb::Slice& v) {
  return v.size() >= 1 && v[0] == kBehaviourFormat && (v.size() - 1) % kBehaviourRecordBytes == 0;
}

// The dedupe window: an appended behaviour equal in (item, time) to one of the last
// kDedupWindow stored ones is the same engagement seen again (a replay after a
// restore, or a late-label correction of the same impression); it is folded into the
// stored one (action bits OR-ed, play time maxed) instead of appended. Histories are
// appended in time order, so the look-back stops at the first older behaviour: a fresh
// append costs one comparison, which matters because RocksDB runs this operator on
// every read of a key whose operands are not compacted yet.
constexpr size_t kDedupWindow = 256;

// Appends the operand's records to `existing` (may be absent), folding duplicates,
// and keeps the newest max_len. Folding only looks back and trimming keeps a suffix,
// so grouping operands differently gives the same history (the associativity RocksDB
// relies on when it combines operands before the base value, and MultiRead when it
// lays staged appends over the committed history), except for a duplicate whose
// first copy was already trimmed away. False when an input is malformed.
bool AppendAndTrim(const rocksdb::Slice* existing, const rocksdb::Slice& operand, size_t max_len, std::string* new_value) {
  if (!WellFormed(operand) || (existing != nullptr && !WellFormed(*existing))) return false;
  constexpr size_t R = kBehaviourRecordBytes;
  const size_t old_n = existing == nullptr ? 0 : (existing->size() - 1) / R;
  const size_t add_n = (operand.size() - 1) / R;
  const size_t from_old = std::min(old_n, max_len);  // older records are trimmed anyway
  std::string& out = *new_value;
  out.clear();
  out.reserve(1 + (from_old + add_n) * R);
  out.push_back(kBehaviourFormat);
  if (from_old > 0) out.append(existing->data() + 1 + (old_n - from_old) * R, from_old * R);
  for (size_t i = 0; i < add_n; ++i) {
    const char* rec = operand.data() + 1 + i * R;
    const size_t n = (out.size() - 1) / R;
    bool folded = false;
    int64_t rec_time;
    std::memcpy(&rec_time, rec + 8, 8);
    for (size_t j = n; j-- > 0 && n - j <= kDedupWindow;) {
      char* old = out.data() + 1 + j * R;
      int64_t old_time;
      std::memcpy(&old_time, old + 8, 8);
      if (old_time < rec_time) break;                // older than rec: no match further back
      if (std::memcmp(old, rec, 16) != 0) continue;  // item id and time differ
      uint32_t a, b, pa, pb;
      std::memcpy(&a, old + 16, 4), std::memcpy(&b, rec + 16, 4);
      std::memcpy(&pa, old + 20, 4), std::memcpy(&pb, rec + 20, 4);
      a |= b, pa = std::max(pa, pb);
      std::memcpy(old + 16, &a, 4), std::memcpy(old + 20, &pa, 4);
      folded = true;
      break;
    }
    if (!folded) out.append(rec, R);
  }
  const size_t n = (out.size() - 1) / R;
  if (n > max_len) out.erase(1, (n - max_len) * R);
  return true;
}

// The family's merge operator: AppendAndTrim. A malformed input fails the merge:
// RocksDB then reports Corruption on read, which DecodeBehaviours' callers turn into
// DataLoss naming the user.
class AppendTrimOperator : public rocksdb::AssociativeMergeOperator {
 public:
  explicit AppendTrimOperator(size_t max_len) : max_len_(max_len) {}

  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing, const rocksdb::Slice& operand,
             std::string* new_value, rocksdb::Logger* /*logger*/) const override {
    return AppendAndTrim(existing, operand, max_len_, new_value);
  }

  const char* Name() const override { return "freshet.BehaviourAppendTrim"; }

 private:
  size_t max_len_;
};

// Every user key lies in ["u", "v").
constexpr char kFirstUserKey[] = "u";
constexpr char kPastLastUserKey[] = "v";

}  // namespace

std::string EncodeBehaviours(const std::vector<Behaviour>& behaviours) {
  std::string out(1 + behaviours.size() * kBehaviourRecordBytes, '\0');
  out[0] = kBehaviourFormat;
  char* p = out.data() + 1;
  for (const Behaviour& b : behaviours) {
    std::memcpy(p, &b.item_id, 8);
    std::memcpy(p + 8, &b.time_ms, 8);
    std::memcpy(p + 16, &b.actions, 4);
    std::memcpy(p + 20, &b.play_ms, 4);
    p += kBehaviourRecordBytes;
  }
  return out;
}

StatusOr<std::vector<Behaviour>> DecodeBehaviours(std::string_view value, size_t max_len) {
  if (!WellFormed(rocksdb::Slice(value.data(), value.size()))) {
    return DataLossError("behaviour history of " + std::to_string(value.size()) +
                         " bytes is not a format byte plus whole 24-byte records");
  }
  const size_t n = (value.size() - 1) / kBehaviourRecordBytes;
  const size_t keep = std::min(n, max_len);
  std::vector<Behaviour> out(keep);
  const char* p = value.data() + 1 + (n - keep) * kBehaviourRecordBytes;
  for (Behaviour& b : out) {
    std::memcpy(&b.item_id, p, 8);
    std::memcpy(&b.time_ms, p + 8, 8);
    std::memcpy(&b.actions, p + 16, 4);
    std::memcpy(&b.play_ms, p + 20, 4);
    p += kBehaviourRecordBytes;
  }
  return out;
}

StatusOr<std::unique_ptr<KvStore>> BehaviourCache::OpenSecondary(const std::string& path,
                                                                 const std::string& secondary_path, int max_len) {
  KvStore::Options o;
  o.path = path;
  o.secondary_path = secondary_path;
  o.create_if_missing = false;
  Configure(&o, max_len);
  return KvStore::Open(o);
}

void BehaviourCache::Configure(KvStore::Options* options, int max_len) {
  CHECK_GE(max_len, 1);
  for (const char* family : {kBehaviourFamily, kBehaviourStagedFamily}) {
    if (std::find(options->families.begin(), options->families.end(), family) == options->families.end())
      options->families.push_back(family);
    options->merge_operators[family] = MakeMergeOperator(max_len);
  }
}

std::shared_ptr<rocksdb::MergeOperator> BehaviourCache::MakeMergeOperator(int max_len) {
  return std::make_shared<AppendTrimOperator>(static_cast<size_t>(max_len));
}

std::string BehaviourCache::Key(uint64_t user_id) {
  std::string k(9, '\0');
  k[0] = 'u';
  for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>(user_id >> (56 - 8 * i));
  return k;
}

void BehaviourCache::Append(WriteBatch* batch, uint64_t user_id, const std::vector<Behaviour>& behaviours) const {
  if (behaviours.empty()) return;
  batch->Merge(staged_ ? kBehaviourStagedFamily : kBehaviourFamily, Key(user_id), EncodeBehaviours(behaviours));
}

Status BehaviourCache::QueueCommit(WriteBatch* batch) const {
  RETURN_IF_ERROR(store_->ScanPrefix(kBehaviourStagedFamily, kFirstUserKey, [&](std::string_view key, std::string_view value) {
    batch->Merge(kBehaviourFamily, key, value);
    return true;
  }));
  QueueDropStaged(batch);
  return Status::Ok();
}

void BehaviourCache::QueueDropStaged(WriteBatch* batch) const {
  batch->DeleteRange(kBehaviourStagedFamily, kFirstUserKey, kPastLastUserKey);
}

Status BehaviourCache::Append(uint64_t user_id, const std::vector<Behaviour>& behaviours) {
  WriteBatch batch;
  Append(&batch, user_id, behaviours);
  if (batch.empty()) return Status::Ok();
  return store_->Write(batch);
}

StatusOr<std::vector<std::vector<Behaviour>>> BehaviourCache::MultiRead(const std::vector<uint64_t>& users) const {
  std::vector<std::string> keys;
  keys.reserve(users.size());
  for (uint64_t u : users) keys.push_back(Key(u));
  ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> values, store_->MultiGet(kBehaviourFamily, keys));
  ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> staged, store_->MultiGet(kBehaviourStagedFamily, keys));
  std::vector<std::vector<Behaviour>> out(users.size());
  std::string merged;
  for (size_t i = 0; i < users.size(); ++i) {
    const std::optional<std::string>& base = values[i];
    if (!base.has_value() && !staged[i].has_value()) continue;
    std::string_view value = base.has_value() ? std::string_view(*base) : std::string_view(*staged[i]);
    if (base.has_value() && staged[i].has_value()) {  // the staged appends go on top
      const rocksdb::Slice existing(*base);
      if (!AppendAndTrim(&existing, rocksdb::Slice(*staged[i]), static_cast<size_t>(max_len_), &merged))
        return DataLossError("user " + std::to_string(users[i]) + ": behaviour history or staged appends malformed");
      value = merged;
    }
    auto decoded = DecodeBehaviours(value, static_cast<size_t>(max_len_));
    if (!decoded.ok()) return DataLossError("user " + std::to_string(users[i]) + ": " + decoded.status().message());
    out[i] = std::move(decoded).value();
  }
  return out;
}

StatusOr<std::vector<Behaviour>> BehaviourCache::Read(uint64_t user_id) const {
  ASSIGN_OR_RETURN(auto all, MultiRead({user_id}));
  return std::move(all[0]);
}

}  // namespace freshet::store
