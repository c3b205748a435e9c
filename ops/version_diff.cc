// VersionDiff; see version_diff.h.
#include "ops/version_diff.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <unordered_map>

#include "common/json.h"

namespace freshet::ops {
namespace {

// Sums in double: float32 parameters, compared across versions whose differences
// can be many orders of magnitude below the values.
double SquaredNorm(const float* v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return s;
}

double SquaredDistance(const float* a, const float* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(b[i]) - a[i];
    s += d * d;
  }
  return s;
}

double Relative(double diff, double base) {
  if (diff == 0) return 0;
  return base > 0 ? diff / base : std::numeric_limits<double>::infinity();
}

std::vector<TensorDiff> DiffDense(const ModelUpdate& from, const ModelUpdate& to) {
  std::map<std::string, const DenseTensor*> a, b;
  for (const DenseTensor& t : from.dense()) a[t.name()] = &t;
  for (const DenseTensor& t : to.dense()) b[t.name()] = &t;
  std::vector<TensorDiff> out;
  for (const auto& [name, ta] : a) {
    TensorDiff d;
    d.name = name;
    d.l2_from = std::sqrt(SquaredNorm(ta->values().data(), ta->values_size()));
    auto it = b.find(name);
    if (it == b.end()) {
      d.shape.assign(ta->shape().begin(), ta->shape().end());
      d.change = TensorDiff::Change::kRemoved;
      out.push_back(d);
      continue;
    }
    const DenseTensor* tb = it->second;
    d.shape.assign(tb->shape().begin(), tb->shape().end());
    d.l2_to = std::sqrt(SquaredNorm(tb->values().data(), tb->values_size()));
    const bool same_shape = std::equal(ta->shape().begin(), ta->shape().end(), tb->shape().begin(), tb->shape().end()) &&
                            ta->values_size() == tb->values_size();
    if (!same_shape) {
      d.change = TensorDiff::Change::kReshaped;
    } else {
      d.l2_diff = std::sqrt(SquaredDistance(ta->values().data(), tb->values().data(), ta->values_size()));
      d.relative = Relative(d.l2_diff, d.l2_from);
      d.change = d.l2_diff > 0 ? TensorDiff::Change::kChanged : TensorDiff::Change::kUnchanged;
    }
    out.push_back(d);
  }
  for (const auto& [name, tb] : b) {
    if (a.count(name)) continue;
    TensorDiff d;
    d.name = name;
    d.shape.assign(tb->shape().begin(), tb->shape().end());
    d.l2_to = std::sqrt(SquaredNorm(tb->values().data(), tb->values_size()));
    d.change = TensorDiff::Change::kAdded;
    out.push_back(d);
  }
  std::sort(out.begin(), out.end(), [](const TensorDiff& x, const TensorDiff& y) { return x.name < y.name; });
  return out;
}

// One slot's rows of a FULL update: id → pointer to its `dim` values.
struct SlotIndex {
  uint32_t dim = 0;
  std::unordered_map<uint64_t, const float*> rows;
};

StatusOr<std::map<uint32_t, SlotIndex>> IndexSparse(const ModelUpdate& u, const char* side) {
  std::map<uint32_t, SlotIndex> out;
  for (const SparseRows& s : u.sparse()) {
    SlotIndex& index = out[s.slot()];
    if (index.dim != 0 && index.dim != s.dim())
      return InvalidArgumentError(std::string(side) + " version has two widths for slot " + std::to_string(s.slot()));
    index.dim = s.dim();
    if (static_cast<size_t>(s.values_size()) != static_cast<size_t>(s.ids_size()) * s.dim())
      return InvalidArgumentError(std::string(side) + " version: slot " + std::to_string(s.slot()) +
                                  " has values that do not match ids × dim");
    for (int i = 0; i < s.ids_size(); ++i) index.rows[s.ids(i)] = s.values().data() + static_cast<size_t>(i) * s.dim();
  }
  return out;
}

StatusOr<std::vector<TableDiff>> DiffSparse(const ModelUpdate& from, const ModelUpdate& to) {
  ASSIGN_OR_RETURN(auto a, IndexSparse(from, "the first"));
  ASSIGN_OR_RETURN(auto b, IndexSparse(to, "the second"));
  std::map<uint32_t, TableDiff> tables;
  for (const auto& [slot, ia] : a) {
    TableDiff& t = tables[slot];
    t.slot = slot;
    t.dim = ia.dim;
    auto jb = b.find(slot);
    if (jb != b.end() && jb->second.dim != ia.dim)
      return InvalidArgumentError("slot " + std::to_string(slot) + " changed width from " + std::to_string(ia.dim) +
                                  " to " + std::to_string(jb->second.dim) + ": the versions are different models");
    double sq = 0;
    for (const auto& [id, row] : ia.rows) {
      const float* other = nullptr;
      if (jb != b.end()) {
        auto r = jb->second.rows.find(id);
        if (r != jb->second.rows.end()) other = r->second;
      }
      if (other == nullptr) {
        ++t.removed;
        continue;
      }
      const double d = SquaredDistance(row, other, ia.dim);
      if (d > 0) {
        ++t.changed;
        sq += d;
      } else {
        ++t.unchanged;
      }
    }
    t.l2_diff = std::sqrt(sq);
  }
  for (const auto& [slot, ib] : b) {
    TableDiff& t = tables[slot];
    t.slot = slot;
    t.dim = ib.dim;
    auto ja = a.find(slot);
    for (const auto& [id, row] : ib.rows)
      if (ja == a.end() || !ja->second.rows.count(id)) ++t.added;
  }
  std::vector<TableDiff> out;
  for (auto& [slot, t] : tables) out.push_back(t);
  return out;
}

std::vector<MetricDiff> DiffMetrics(const ModelManifest& from, const ModelManifest& to) {
  std::map<std::string, MetricDiff> m;
  for (const auto& [k, v] : from.metrics()) m[k].from = v;
  for (const auto& [k, v] : to.metrics()) m[k].to = v;
  std::vector<MetricDiff> out;
  for (auto& [k, d] : m) {
    d.name = k;
    out.push_back(d);
  }
  return out;
}

std::string Shape(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s.empty() ? "scalar" : s;
}

std::string Printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

std::string MaybeNumber(const std::optional<double>& v) { return v ? Printf("%.6g", *v) : "-"; }

void ManifestSummaryJson(const ModelManifest& m, JsonWriter* w) {
  w->BeginObject().Key("version").Int(static_cast<int64_t>(m.version()));
  w->Key("kind").String(m.kind() == UPDATE_FULL ? "full" : "delta");
  w->Key("base_version").Int(static_cast<int64_t>(m.base_version()));
  w->Key("train_step").Int(static_cast<int64_t>(m.train_step())).Key("created_at_ms").Int(m.created_at_ms());
  w->Key("newest_sample_event_time_ms").Int(m.newest_sample_event_time_ms());
  w->Key("model_fingerprint").String(m.model_fingerprint()).EndObject();
}

}  // namespace

const char* ChangeName(TensorDiff::Change change) {
  switch (change) {
    case TensorDiff::Change::kUnchanged: return "unchanged";
    case TensorDiff::Change::kChanged: return "changed";
    case TensorDiff::Change::kAdded: return "added";
    case TensorDiff::Change::kRemoved: return "removed";
    case TensorDiff::Change::kReshaped: return "reshaped";
  }
  return "?";
}

StatusOr<VersionDiff> DiffVersions(const ModelUpdate& from_full, const ModelUpdate& to_full,
                                   const ModelManifest& from_manifest, const ModelManifest& to_manifest) {
  VersionDiff d;
  d.from = from_manifest;
  d.to = to_manifest;
  d.tensors = DiffDense(from_full, to_full);
  ASSIGN_OR_RETURN(d.tables, DiffSparse(from_full, to_full));
  d.metrics = DiffMetrics(from_manifest, to_manifest);
  return d;
}

std::string DiffJson(const VersionDiff& diff) {
  JsonWriter w;
  w.BeginObject().Key("from");
  ManifestSummaryJson(diff.from, &w);
  w.Key("to");
  ManifestSummaryJson(diff.to, &w);
  w.Key("dense").BeginArray();
  for (const TensorDiff& t : diff.tensors) {
    w.BeginObject().Key("name").String(t.name).Key("shape").BeginArray();
    for (int64_t s : t.shape) w.Int(s);
    w.EndArray().Key("change").String(ChangeName(t.change));
    w.Key("l2_diff").Double(t.l2_diff).Key("l2_from").Double(t.l2_from).Key("l2_to").Double(t.l2_to);
    w.Key("relative").Double(t.relative).EndObject();
  }
  w.EndArray().Key("tables").BeginArray();
  for (const TableDiff& t : diff.tables) {
    w.BeginObject().Key("slot").Int(t.slot).Key("dim").Int(t.dim).Key("added").Int(static_cast<int64_t>(t.added));
    w.Key("changed").Int(static_cast<int64_t>(t.changed)).Key("removed").Int(static_cast<int64_t>(t.removed));
    w.Key("unchanged").Int(static_cast<int64_t>(t.unchanged)).Key("l2_diff").Double(t.l2_diff).EndObject();
  }
  w.EndArray().Key("metrics").BeginArray();
  for (const MetricDiff& m : diff.metrics) {
    w.BeginObject().Key("name").String(m.name).Key("from");
    m.from ? w.Double(*m.from) : w.Null();
    w.Key("to");
    m.to ? w.Double(*m.to) : w.Null();
    w.EndObject();
  }
  w.EndArray().EndObject();
  return w.str();
}

std::string DiffText(const VersionDiff& diff) {
  const uint64_t a = diff.from.version(), b = diff.to.version();
  std::string out = Printf("diff v%llu -> v%llu: train_step %llu -> %llu, newest sample event time %+.1f s\n",
                           static_cast<unsigned long long>(a), static_cast<unsigned long long>(b),
                           static_cast<unsigned long long>(diff.from.train_step()),
                           static_cast<unsigned long long>(diff.to.train_step()),
                           (diff.to.newest_sample_event_time_ms() - diff.from.newest_sample_event_time_ms()) / 1000.0);
  if (diff.from.model_fingerprint() != diff.to.model_fingerprint())
    out += "note: the model fingerprints differ (the model config changed between these versions)\n";

  size_t changed = 0;
  for (const TensorDiff& t : diff.tensors) changed += t.change != TensorDiff::Change::kUnchanged;
  out += Printf("\ndense tensors: %zu of %zu changed\n", changed, diff.tensors.size());
  if (changed > 0) out += Printf("  %-44s %-10s %-9s %12s %12s\n", "tensor", "shape", "change", "l2(diff)", "relative");
  for (const TensorDiff& t : diff.tensors) {
    if (t.change == TensorDiff::Change::kUnchanged) continue;
    const bool compared = t.change == TensorDiff::Change::kChanged;
    out += Printf("  %-44s %-10s %-9s %12s %12s\n", t.name.c_str(), Shape(t.shape).c_str(), ChangeName(t.change),
                  compared ? Printf("%.4g", t.l2_diff).c_str() : "-", compared ? Printf("%.3e", t.relative).c_str() : "-");
  }

  out += "\nembedding rows per slot:\n";
  out += Printf("  %-6s %-4s %10s %10s %10s %10s %12s\n", "slot", "dim", "added", "changed", "removed", "unchanged",
                "l2(diff)");
  for (const TableDiff& t : diff.tables)
    out += Printf("  %-6u %-4u %10llu %10llu %10llu %10llu %12.4g\n", t.slot, t.dim,
                  static_cast<unsigned long long>(t.added), static_cast<unsigned long long>(t.changed),
                  static_cast<unsigned long long>(t.removed), static_cast<unsigned long long>(t.unchanged), t.l2_diff);
  if (diff.tables.empty()) out += "  (no embedding rows in either version)\n";

  out += Printf("\nmetrics at cut time:\n  %-28s %14s %14s %14s\n", "metric", ("v" + std::to_string(a)).c_str(),
                ("v" + std::to_string(b)).c_str(), "change");
  for (const MetricDiff& m : diff.metrics)
    out += Printf("  %-28s %14s %14s %14s\n", m.name.c_str(), MaybeNumber(m.from).c_str(), MaybeNumber(m.to).c_str(),
                  m.from && m.to ? Printf("%+.4g", *m.to - *m.from).c_str() : "-");
  if (diff.metrics.empty()) out += "  (neither version recorded metrics)\n";
  return out;
}

namespace {

// "stored: v3..v17 (15 versions)" or "the snapshot store is empty".
std::string StoredVersions(const publisher::SnapshotStore& snapshots) {
  auto list = snapshots.List();
  if (!list.ok()) return "the stored versions cannot be listed: " + list.status().ToString();
  if (list->empty()) return "the snapshot store is empty (nothing published yet)";
  return "stored: v" + std::to_string(list->front().version()) + "..v" + std::to_string(list->back().version()) +
         " (" + std::to_string(list->size()) + " versions)";
}

HttpResponse NotStored(const Status& s, const publisher::SnapshotStore& snapshots) {
  return HttpResponse::Text(s.code() == StatusCode::kNotFound ? 404 : 500,
                            s.message() + "; " + StoredVersions(snapshots) + "\n");
}

}  // namespace

void RegisterVersionDiff(AdminServer* admin, const publisher::SnapshotStore* snapshots) {
  admin->Handle("/v1/diff", [snapshots](const HttpRequest& req) {
    if (req.method != "GET") return HttpResponse::Text(405, "use GET\n");
    uint64_t v[2] = {0, 0};
    const char* names[2] = {"from", "to"};
    for (int i = 0; i < 2; ++i) {
      auto it = req.query.find(names[i]);
      char* end = nullptr;
      v[i] = it == req.query.end() ? 0 : std::strtoull(it->second.c_str(), &end, 10);
      if (v[i] == 0 || *end != '\0')
        return HttpResponse::Text(400, std::string("diff needs ?from=V1&to=V2 (version numbers, see /v1/versions); ") +
                                           names[i] + " is missing or not a positive number\n");
    }
    StatusOr<ModelManifest> ma = snapshots->Manifest(v[0]);
    if (!ma.ok()) return NotStored(ma.status(), *snapshots);
    StatusOr<ModelManifest> mb = snapshots->Manifest(v[1]);
    if (!mb.ok()) return NotStored(mb.status(), *snapshots);
    StatusOr<ModelUpdate> a = snapshots->Materialize(v[0]);
    if (!a.ok()) return NotStored(a.status(), *snapshots);
    StatusOr<ModelUpdate> b = snapshots->Materialize(v[1]);
    if (!b.ok()) return NotStored(b.status(), *snapshots);
    StatusOr<VersionDiff> d = DiffVersions(*a, *b, *ma, *mb);
    if (!d.ok()) return HttpResponse::Text(409, d.status().message() + "\n");
    auto f = req.query.find("format");
    if (f != req.query.end() && f->second == "text") return HttpResponse::Text(200, DiffText(*d));
    return HttpResponse::Json(200, DiffJson(*d));
  });
}

}  // namespace freshet::ops
