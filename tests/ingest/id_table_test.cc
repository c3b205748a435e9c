// IdTable against std::unordered_map as the reference: random inserts, lookups and
// releases, with the real hash and with hashes that collide on purpose (long probe
// runs that wrap around the end of the array, where backward-shift deletion has to
// move entries across the wrap).
#include "ingest/id_table.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace freshet::ingest {
namespace {

struct Node {
  std::string id;
  int value = 0;
};

// Few distinct hashes, the high ones landing in the last slots of a small table.
struct CollidingHash {
  uint64_t operator()(std::string_view id) const { return ~uint64_t{0} - std::hash<std::string_view>()(id) % 5; }
};

template <class Table>
void RunAgainstReference(uint32_t seed, int ops, int id_space) {
  Table table;
  std::unordered_map<std::string, Node*> reference;
  std::mt19937 rng(seed);
  for (int op = 0; op < ops; ++op) {
    const std::string id = "r" + std::to_string(rng() % static_cast<uint32_t>(id_space));
    switch (rng() % 3) {
      case 0: {  // insert (or find the existing one)
        std::string moved = id;
        auto [node, inserted] = table.Emplace(std::move(moved));
        ASSERT_EQ(inserted, reference.count(id) == 0) << id;
        ASSERT_EQ(node->id, id);
        if (inserted) {
          node->value = op;
          reference[id] = node;
        } else {
          ASSERT_EQ(moved, id) << "an id that was not inserted must be left as it was";
          ASSERT_EQ(node, reference[id]) << "a node never moves";
        }
        break;
      }
      case 1: {  // lookup
        Node* node = table.Find(id);
        auto it = reference.find(id);
        ASSERT_EQ(node, it == reference.end() ? nullptr : it->second) << id;
        break;
      }
      case 2: {  // release
        auto it = reference.find(id);
        if (it == reference.end()) break;
        std::unique_ptr<Node> released = table.Release(it->second);
        ASSERT_EQ(released.get(), it->second);
        ASSERT_EQ(released->id, id);
        reference.erase(it);
        break;
      }
    }
    ASSERT_EQ(table.size(), reference.size());
  }
  // Every remaining id is found, with its own node, and iteration visits each once.
  for (const auto& [id, node] : reference) ASSERT_EQ(table.Find(id), node) << id;
  size_t visited = 0;
  table.ForEach([&](Node& node) {
    ++visited;
    ASSERT_EQ(reference.at(node.id), &node);
  });
  EXPECT_EQ(visited, reference.size());
}

TEST(IdTableTest, MatchesUnorderedMapUnderRandomOperations) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    RunAgainstReference<IdTable<Node>>(seed, 60000, 5000);
    if (HasFatalFailure()) return;
  }
}

TEST(IdTableTest, MatchesUnorderedMapWhenHashesCollide) {
  // Small id space: the table stays small, so runs of equal hashes wrap past the end.
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    RunAgainstReference<IdTable<Node, CollidingHash>>(seed, 20000, 40);
    if (HasFatalFailure()) return;
  }
}

TEST(IdTableTest, ReleasingEveryNodeEmptiesTheTableAndItCanBeReused) {
  IdTable<Node> table;
  std::vector<Node*> nodes;
  for (int i = 0; i < 1000; ++i) nodes.push_back(table.Emplace("id" + std::to_string(i)).first);
  for (Node* n : nodes) table.Release(n);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find("id7"), nullptr);
  auto [node, inserted] = table.Emplace("id7");
  EXPECT_TRUE(inserted);
  EXPECT_EQ(table.Find("id7"), node);
}

}  // namespace
}  // namespace freshet::ingest
