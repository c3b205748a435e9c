// Keys and chunked values of stores that keep numbered versions in one column family
// (learner/checkpoint_store.h, publisher/snapshot_store.h):
//
//   <kind>/<version, 20 digits>              one value per kind and version
//   <kind>/<version, 20 digits>/<chunk, 8>   a large blob cut into kChunkBytes pieces
//
// Zero-padded numbers sort lexicographically in version order, so a version range of
// one kind is one DeleteRange and the newest version is the last key.
//
//   store::WriteBatch batch;
//   const uint64_t chunks = PutChunks(&batch, kFamily, 's', version, state);
//   ... later: ASSIGN_OR_RETURN(std::string state, GetChunks(*db, kFamily, 's', version, chunks));
//
// Thread-safety: free functions; as KvStore and WriteBatch.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/kv_store.h"

namespace freshet::store {

constexpr size_t kChunkBytes = 4 << 20;

std::string VersionKey(char kind, uint64_t version);
std::string ChunkKey(char kind, uint64_t version, uint64_t chunk);

// Queues `bytes` as chunks under kind/version; returns how many (0 for empty bytes).
uint64_t PutChunks(WriteBatch* batch, std::string_view family, char kind, uint64_t version, std::string_view bytes);
// Concatenates `chunks` chunks written by PutChunks. DataLoss naming the chunk when
// one is missing; store errors as they come.
StatusOr<std::string> GetChunks(const KvStore& store, std::string_view family, char kind, uint64_t version,
                                uint64_t chunks);

}  // namespace freshet::store
