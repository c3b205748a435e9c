// Helpers shared by the publisher's tests: the learner's store as the learner
// daemon opens it for the publisher (ops/learner_component.cc), and ModelUpdate
// contents as maps, so two updates compare whatever their block layout.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "learner/checkpoint_store.h"
#include "publisher/snapshot_store.h"
#include "schemas/model.pb.h"
#include "store/kv_store.h"

namespace freshet::publisher::testutil {

// A RocksDB at `path` with the checkpoint and snapshot families; null (and a test
// failure) when it does not open.
inline std::unique_ptr<store::KvStore> OpenPublisherStore(const std::filesystem::path& path) {
  store::KvStore::Options o;
  o.path = path.string();
  o.families = learner::CheckpointStore::Families();
  for (const std::string& f : SnapshotStore::Families()) o.families.push_back(f);
  auto s = store::KvStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : nullptr;
}

// (slot, id) → row values of an update's sparse blocks.
using RowMap = std::map<std::pair<uint32_t, uint64_t>, std::vector<float>>;
inline RowMap Rows(const ModelUpdate& u) {
  RowMap out;
  for (const SparseRows& r : u.sparse())
    for (int i = 0; i < r.ids_size(); ++i)
      out[{r.slot(), r.ids(i)}].assign(r.values().begin() + i * r.dim(), r.values().begin() + (i + 1) * r.dim());
  return out;
}

// Tensor name → values of an update's dense tensors.
inline std::map<std::string, std::vector<float>> Dense(const ModelUpdate& u) {
  std::map<std::string, std::vector<float>> out;
  for (const DenseTensor& t : u.dense()) out[t.name()].assign(t.values().begin(), t.values().end());
  return out;
}

}  // namespace freshet::publisher::testutil
