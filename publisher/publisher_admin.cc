// Publisher's operator surface: /status JSON and the /v1/* admin endpoints that
// `freshet ops` calls (see publisher.h).
#include <cstdio>

#include "common/json.h"
#include "publisher/publisher.h"

namespace freshet::publisher {
namespace {

constexpr int64_t kRollbackWaitMs = 10000;
constexpr int64_t kUnpinWaitMs = 15000;

const char* KindName(UpdateKind k) { return k == UPDATE_FULL ? "full" : k == UPDATE_DELTA ? "delta" : "?"; }

void ManifestJson(const ModelManifest& m, JsonWriter* w) {
  w->BeginObject();
  w->Key("version").Int(static_cast<int64_t>(m.version())).Key("base_version").Int(static_cast<int64_t>(m.base_version()));
  w->Key("kind").String(KindName(m.kind())).Key("created_at_ms").Int(m.created_at_ms());
  w->Key("train_step").Int(static_cast<int64_t>(m.train_step()));
  w->Key("newest_sample_event_time_ms").Int(m.newest_sample_event_time_ms());
  w->Key("newest_sample_emit_time_ms").Int(m.newest_sample_emit_time_ms());
  w->Key("rows_added").Int(static_cast<int64_t>(m.sparse_rows_added()));
  w->Key("rows_updated").Int(static_cast<int64_t>(m.sparse_rows_updated()));
  w->Key("rows_deleted").Int(static_cast<int64_t>(m.sparse_rows_deleted()));
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", m.dense_crc32c());
  w->Key("dense_crc32c").String(crc).Key("model_fingerprint").String(m.model_fingerprint());
  w->Key("pinned").Bool(m.pinned());
  w->Key("input_offsets").BeginArray();
  for (const PartitionOffset& o : m.input_offsets())
    w->BeginObject().Key("topic").String(o.topic()).Key("partition").Int(o.partition()).Key("offset").Int(o.offset()).EndObject();
  w->EndArray().Key("metrics").BeginObject();
  for (const auto& [k, v] : std::map<std::string, double>(m.metrics().begin(), m.metrics().end())) w->Key(k).Double(v);
  w->EndObject().EndObject();
}

std::string VersionsText(const std::vector<ModelManifest>& list) {
  std::string out = "version  kind   base     step        created_at_ms  newest_event_ms  rows+/~/-          auc\n";
  for (const ModelManifest& m : list) {
    std::string auc;
    for (const auto& [k, v] : std::map<std::string, double>(m.metrics().begin(), m.metrics().end()))
      if (k.rfind("auc/", 0) == 0) {
        char b[48];
        std::snprintf(b, sizeof b, "%s%s=%.4f", auc.empty() ? "" : ",", k.substr(4).c_str(), v);
        auc += b;
      }
    char line[512];
    std::snprintf(line, sizeof line, "%-8llu %-6s %-8llu %-11llu %-14lld %-16lld %llu/%llu/%llu%s %s\n",
                  static_cast<unsigned long long>(m.version()), KindName(m.kind()),
                  static_cast<unsigned long long>(m.base_version()), static_cast<unsigned long long>(m.train_step()),
                  static_cast<long long>(m.created_at_ms()), static_cast<long long>(m.newest_sample_event_time_ms()),
                  static_cast<unsigned long long>(m.sparse_rows_added()),
                  static_cast<unsigned long long>(m.sparse_rows_updated()),
                  static_cast<unsigned long long>(m.sparse_rows_deleted()), m.pinned() ? " PINNED" : "", auc.c_str());
    out += line;
  }
  return out;
}

HttpResponse Error(const Status& s) {
  int code = 500;
  switch (s.code()) {
    case StatusCode::kNotFound: code = 404; break;
    case StatusCode::kInvalidArgument: code = 400; break;
    case StatusCode::kFailedPrecondition: code = 409; break;
    case StatusCode::kUnavailable: code = 503; break;
    case StatusCode::kDeadlineExceeded: code = 504; break;
    default: break;
  }
  return HttpResponse::Text(code, s.ToString() + "\n");
}

}  // namespace

std::string Publisher::StatusJson() const {
  JsonWriter w;
  const int64_t now = clock_->NowMs();
  const std::optional<uint64_t> pin = pinned();
  std::lock_guard<std::mutex> lock(mu_);
  w.BeginObject();
  w.Key("version").Int(static_cast<int64_t>(published_));
  w.Key("published_age_ms").Int(published_at_ms_ ? now - published_at_ms_ : -1);
  w.Key("pinned").Int(pin ? static_cast<int64_t>(*pin) : 0);
  w.Key("last_blocked").String(last_blocked_);
  w.Key("error").String(error_.ok() ? "" : error_.ToString());
  w.Key("replicas").BeginArray();
  for (const PushClient::ReplicaState& r : push_->Replicas()) {
    w.BeginObject().Key("address").String(r.address).Key("connected").Bool(r.connected);
    w.Key("acked_version").Int(static_cast<int64_t>(r.acked_version));
    w.Key("acked_age_ms").Int(r.acked_at_ms ? now - r.acked_at_ms : -1).Key("last_error").String(r.last_error);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return w.str();
}

void Publisher::RegisterAdmin(AdminServer* admin) {
  admin->Handle("/v1/versions", [this](const HttpRequest& req) {
    if (req.method != "GET") return HttpResponse::Text(405, "use GET\n");
    StatusOr<std::vector<ModelManifest>> list = Versions();
    if (!list.ok()) return Error(list.status());
    auto f = req.query.find("format");
    if (f != req.query.end() && f->second == "text") return HttpResponse::Text(200, VersionsText(*list));
    JsonWriter w;
    w.BeginObject().Key("published").Int(static_cast<int64_t>(published_version()));
    w.Key("pinned").Int(static_cast<int64_t>(pinned().value_or(0))).Key("versions").BeginArray();
    for (const ModelManifest& m : *list) ManifestJson(m, &w);
    w.EndArray().EndObject();
    return HttpResponse::Json(200, w.str());
  });
  admin->Handle("/v1/rollback", [this, admin](const HttpRequest& req) {
    if (req.method != "POST") return HttpResponse::Text(405, "use POST\n");
    if (HttpResponse denied = admin->RequireToken(req); denied.status != 0) return denied;
    auto to = req.query.find("to");
    char* end = nullptr;
    const unsigned long long v = to == req.query.end() ? 0 : std::strtoull(to->second.c_str(), &end, 10);
    if (v == 0 || *end != '\0') return HttpResponse::Text(400, "rollback needs ?to=VERSION (see /v1/versions)\n");
    Status s = Rollback(v, kRollbackWaitMs);
    if (!s.ok() && s.code() != StatusCode::kDeadlineExceeded) return Error(s);
    return HttpResponse::Json(200, "{\"pinned\":" + std::to_string(v) + ",\"all_replicas_acked\":" +
                                       (s.ok() ? "true" : "false") + ",\"publisher\":" + StatusJson() + "}");
  });
  admin->Handle("/v1/pin", [this, admin](const HttpRequest& req) {
    if (req.method != "POST") return HttpResponse::Text(405, "use POST\n");
    if (HttpResponse denied = admin->RequireToken(req); denied.status != 0) return denied;
    StatusOr<uint64_t> v = Pin();
    if (!v.ok()) return Error(v.status());
    return HttpResponse::Json(200, "{\"pinned\":" + std::to_string(*v) + "}");
  });
  admin->Handle("/v1/snapshot", [this, admin](const HttpRequest& req) {
    if (req.method != "POST") return HttpResponse::Text(405, "use POST\n");
    if (HttpResponse denied = admin->RequireToken(req); denied.status != 0) return denied;
    RequestFull();
    return HttpResponse::Json(200, "{\"full_requested\":true,\"after_version\":" +
                                       std::to_string(published_version()) + "}");
  });
  admin->Handle("/v1/unpin", [this, admin](const HttpRequest& req) {
    if (req.method != "POST") return HttpResponse::Text(405, "use POST\n");
    if (HttpResponse denied = admin->RequireToken(req); denied.status != 0) return denied;
    StatusOr<Cut> cut = Unpin(kUnpinWaitMs);
    if (!cut.ok()) return Error(cut.status());
    if (!cut->blocked.empty())
      return HttpResponse::Text(409, "unpinned, but the validation gate holds the new version back (" + cut->blocked +
                                         ": " + cut->detail + "); serving stays on the last good version\n");
    return HttpResponse::Json(200, "{\"unpinned\":true,\"version\":" + std::to_string(cut->version) + "}");
  });
}

}  // namespace freshet::publisher
