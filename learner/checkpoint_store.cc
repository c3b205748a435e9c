// CheckpointStore: chunked, CRC-checked learner checkpoints in one WriteBatch.
#include "learner/checkpoint_store.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "common/logging.h"
#include "learner/cpu/serialize.h"
#include "store/kv_store.h"
#include "store/versioned_blobs.h"

namespace freshet::learner {
namespace {

constexpr uint64_t kInfoMagic = 0x314F464E494B4346ull;  // "FCKINFO1"

using store::VersionKey;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // Castagnoli, reflected
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

CheckpointStore::CheckpointStore(store::KvStore* store, int retained) : store_(store), retained_(std::max(1, retained)) {}

StatusOr<std::vector<uint64_t>> CheckpointStore::Versions() const {
  std::vector<uint64_t> out;
  RETURN_IF_ERROR(store_->ScanPrefix(kFamily, "m/", [&](std::string_view key, std::string_view) {
    out.push_back(std::strtoull(std::string(key.substr(2)).c_str(), nullptr, 10));
    return true;
  }));
  return out;
}

StatusOr<uint64_t> CheckpointStore::Write(CheckpointData data) {
  ASSIGN_OR_RETURN(std::vector<uint64_t> versions, Versions());
  const uint64_t version = std::max<uint64_t>(versions.empty() ? 1 : versions.back() + 1, data.manifest.version());
  data.manifest.set_version(version);
  store::WriteBatch batch = std::move(data.also);
  const uint64_t chunks = store::PutChunks(&batch, kFamily, 's', version, data.state);
  batch.Put(kFamily, VersionKey('d', version), data.dedup);
  cpu::ByteWriter info;
  info.Put(kInfoMagic);
  info.Put<uint64_t>(chunks);
  info.Put<uint64_t>(data.state.size());
  info.Put<uint32_t>(Crc32c(data.state.data(), data.state.size()));
  info.Put<uint32_t>(Crc32c(data.dedup.data(), data.dedup.size()));
  info.PutString(data.loop);
  batch.Put(kFamily, VersionKey('x', version), info.str());
  std::string manifest;
  if (!data.manifest.SerializeToString(&manifest)) return InternalError("cannot serialize the checkpoint manifest");
  batch.Put(kFamily, VersionKey('m', version), manifest);
  // Retention: keep the newest `retained_` versions including this one.
  if (versions.size() + 1 > static_cast<size_t>(retained_)) {
    const size_t first_kept = versions.size() + 1 - retained_;
    const uint64_t keep_from = first_kept < versions.size() ? versions[first_kept] : version;
    for (char kind : {'s', 'd', 'x', 'm'}) batch.DeleteRange(kFamily, VersionKey(kind, 0), VersionKey(kind, keep_from));
  }
  RETURN_IF_ERROR(store_->Write(batch));
  return version;
}

StatusOr<CheckpointData> CheckpointStore::Read(uint64_t version) const {
  CheckpointData out;
  ASSIGN_OR_RETURN(std::optional<std::string> manifest, store_->Get(kFamily, VersionKey('m', version)));
  if (!manifest || !out.manifest.ParseFromString(*manifest)) return DataLossError("manifest unreadable");
  ASSIGN_OR_RETURN(std::optional<std::string> info, store_->Get(kFamily, VersionKey('x', version)));
  if (!info) return DataLossError("checkpoint info missing");
  cpu::ByteReader r(*info);
  uint64_t magic = 0, chunks = 0, bytes = 0;
  uint32_t state_crc = 0, dedup_crc = 0;
  RETURN_IF_ERROR(r.Get(&magic));
  if (magic != kInfoMagic) return DataLossError("checkpoint info has a bad magic");
  RETURN_IF_ERROR(r.Get(&chunks));
  RETURN_IF_ERROR(r.Get(&bytes));
  RETURN_IF_ERROR(r.Get(&state_crc));
  RETURN_IF_ERROR(r.Get(&dedup_crc));
  RETURN_IF_ERROR(r.GetString(&out.loop));
  ASSIGN_OR_RETURN(out.state, store::GetChunks(*store_, kFamily, 's', version, chunks));
  if (out.state.size() != bytes || Crc32c(out.state.data(), out.state.size()) != state_crc)
    return DataLossError("state bytes do not match their CRC32C");
  ASSIGN_OR_RETURN(std::optional<std::string> dedup, store_->Get(kFamily, VersionKey('d', version)));
  if (!dedup || Crc32c(dedup->data(), dedup->size()) != dedup_crc) return DataLossError("dedup bytes do not match their CRC32C");
  out.dedup = std::move(*dedup);
  return out;
}

StatusOr<std::optional<CheckpointData>> CheckpointStore::ReadNewest() const {
  ASSIGN_OR_RETURN(std::vector<uint64_t> versions, Versions());
  std::string problems;
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    StatusOr<CheckpointData> data = Read(*it);
    if (data.ok()) return std::optional<CheckpointData>(std::move(data).value());
    LOG_WARNING("learner_checkpoint_unreadable").Kv("version", *it).Kv("error", data.status().ToString());
    problems += " v" + std::to_string(*it) + ": " + data.status().message() + ";";
  }
  if (versions.empty()) return std::optional<CheckpointData>();
  return DataLossError("no learner checkpoint in " + store_->path() + " verifies:" + problems +
                       " move the directory aside to start from scratch (Kafka replays from the group offsets)");
}

}  // namespace freshet::learner
