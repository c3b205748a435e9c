// Versioned keys and chunked blobs; see versioned_blobs.h.
#include "store/versioned_blobs.h"

#include <cstdio>

namespace freshet::store {
namespace {

std::string Pad(uint64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::string VersionKey(char kind, uint64_t version) { return std::string(1, kind) + "/" + Pad(version, 20); }

std::string ChunkKey(char kind, uint64_t version, uint64_t chunk) {
  return VersionKey(kind, version) + "/" + Pad(chunk, 8);
}

uint64_t PutChunks(WriteBatch* batch, std::string_view family, char kind, uint64_t version, std::string_view bytes) {
  const uint64_t chunks = (bytes.size() + kChunkBytes - 1) / kChunkBytes;
  for (uint64_t c = 0; c < chunks; ++c) batch->Put(family, ChunkKey(kind, version, c), bytes.substr(c * kChunkBytes, kChunkBytes));
  return chunks;
}

StatusOr<std::string> GetChunks(const KvStore& store, std::string_view family, char kind, uint64_t version,
                                uint64_t chunks) {
  std::string out;
  for (uint64_t c = 0; c < chunks; ++c) {
    ASSIGN_OR_RETURN(std::optional<std::string> chunk, store.Get(family, ChunkKey(kind, version, c)));
    if (!chunk) return DataLossError("chunk " + std::to_string(c) + " of " + std::to_string(chunks) + " missing");
    out += *chunk;
  }
  return out;
}

}  // namespace freshet::store
