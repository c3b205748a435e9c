// Helpers shared by the data-set readers; see eval_data.h.
#include "ingest/eval_data.h"

#include <zlib.h>

#include <utility>

#include "ingest/task_rules.h"

namespace freshet::ingest {

Status EvalCollector::OnImpression(const Impression& imp) {
  if (keep_ && !keep_(imp)) return Status::Ok();
  Sample s;
  s.set_sample_id(imp.request_id());
  s.set_request_id(imp.request_id());
  s.set_user_id(imp.user_id());
  s.set_item_id(imp.item_id());
  s.set_event_time_ms(imp.event_time_ms());
  *s.mutable_sparse() = imp.sparse();
  *s.mutable_dense() = imp.dense();
  index_[imp.request_id()] = samples_.size();
  samples_.push_back(std::move(s));
  labels_.emplace_back();
  return Status::Ok();
}

Status EvalCollector::OnLabel(const Label& label) {
  auto it = index_.find(label.request_id());
  if (it == index_.end()) return Status::Ok();
  const int64_t delay = label.event_time_ms() - samples_[it->second].event_time_ms();
  labels_[it->second].push_back({label.kind(), label.value(), delay});
  return Status::Ok();
}

std::vector<Sample> EvalCollector::TakeLabelled(const TaskRules& rules, bool honour_windows) {
  const int n = rules.size();
  std::vector<float> value(n);
  std::vector<bool> observed(n), positive(n);
  for (size_t i = 0; i < samples_.size(); ++i) {
    Sample& s = samples_[i];
    for (int t = 0; t < n; ++t) {
      value[t] = 0.0f;
      observed[t] = !rules.task(t).regression;
      positive[t] = false;
    }
    for (const Observed& o : labels_[i]) {
      for (int t : rules.TasksForKind(o.kind)) {
        const TaskRule& r = rules.task(t);
        if (honour_windows && o.delay_ms > r.window_ms) continue;
        if (r.regression) {
          if (!observed[t]) value[t] = o.value * r.scale, observed[t] = true;
        } else if (o.value >= r.threshold) {
          value[t] = 1.0f;
          positive[t] = true;
        }
      }
    }
    for (int t = 0; t < n; ++t) {
      const int req = rules.task(t).requires_positive;
      const bool mask = observed[t] && (req < 0 || positive[req]);
      s.add_label(mask ? value[t] : 0.0f);
      s.add_mask(mask);
    }
    s.set_origin(ORIGIN_WINDOW_CLOSED);
    s.set_task_layout(rules.layout());
  }
  std::vector<Sample> out = std::move(samples_);
  samples_.clear();
  labels_.clear();
  index_.clear();
  return out;
}

uint64_t HashId(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h == 0 ? 1 : h;
}

bool ReadGzLine(gzFile_s* file, std::string* line) {
  line->clear();
  char buf[4096];
  while (gzgets(file, buf, sizeof(buf)) != nullptr) {
    line->append(buf);
    if (!line->empty() && line->back() == '\n') break;
  }
  if (line->empty()) return false;
  while (!line->empty() && (line->back() == '\n' || line->back() == '\r')) line->pop_back();
  return true;
}

}  // namespace freshet::ingest
