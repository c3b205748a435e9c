// Config loading, defaults and validation; see config.h.
#include "ops/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace freshet::ops {
namespace {

namespace pb = google::protobuf;

// Collects parse errors with their position, instead of protobuf's stderr logging.
class ErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (first_.empty()) first_ = "line " + std::to_string(line + 1) + ", column " + std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// Sets every unset singular field to its default, recursing into sub-messages
// (creating them) and into the elements of repeated message fields.
void FillDefaults(pb::Message* msg) {
  const pb::Descriptor* d = msg->GetDescriptor();
  const pb::Reflection* r = msg->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->is_map()) continue;
    if (f->is_repeated()) {
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int j = 0; j < r->FieldSize(*msg, f); ++j) FillDefaults(r->MutableRepeatedMessage(msg, f, j));
      }
      continue;
    }
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      FillDefaults(r->MutableMessage(msg, f));
      continue;
    }
    if (r->HasField(*msg, f)) continue;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: r->SetInt32(msg, f, f->default_value_int32()); break;
      case pb::FieldDescriptor::CPPTYPE_INT64: r->SetInt64(msg, f, f->default_value_int64()); break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(msg, f, f->default_value_uint32()); break;
      case pb::FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(msg, f, f->default_value_uint64()); break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(msg, f, f->default_value_double()); break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(msg, f, f->default_value_float()); break;
      case pb::FieldDescriptor::CPPTYPE_BOOL: r->SetBool(msg, f, f->default_value_bool()); break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: r->SetEnum(msg, f, f->default_value_enum()); break;
      case pb::FieldDescriptor::CPPTYPE_STRING: r->SetString(msg, f, f->default_value_string()); break;
      default: break;
    }
  }
}

TaskConfig MakeTask(const std::string& name, std::vector<LabelKind> kinds, int64_t window_ms,
                    const std::string& home_group, const std::string& requires_positive = "") {
  TaskConfig t;
  t.set_name(name);
  for (LabelKind k : kinds) t.add_label_kinds(k);
  t.set_window_ms(window_ms);
  t.set_home_group(home_group);
  t.set_requires_positive(requires_positive);
  return t;
}

void DefaultTasks(FreshetConfig* c) {
  // KuaiRand's tasks. Interactions other than click live in the click sample space
  // (PLE-style); watch signals and hate are observed on every impression.
  *c->add_tasks() = MakeTask("click", {LABEL_CLICK}, 15000, "interaction");
  *c->add_tasks() = MakeTask("long_view", {LABEL_LONG_VIEW}, 30000, "watch");
  *c->add_tasks() = MakeTask("like", {LABEL_LIKE}, 60000, "interaction", "click");
  *c->add_tasks() = MakeTask("follow", {LABEL_FOLLOW}, 120000, "interaction", "click");
  *c->add_tasks() = MakeTask("comment", {LABEL_COMMENT}, 120000, "interaction", "click");
  *c->add_tasks() = MakeTask("forward", {LABEL_FORWARD}, 120000, "interaction", "click");
  *c->add_tasks() = MakeTask("hate", {LABEL_HATE}, 30000, "interaction");
  TaskConfig play = MakeTask("play_time", {LABEL_PLAY_TIME}, 30000, "watch");
  play.set_type(TASK_REGRESSION);
  play.set_value_scale(1.0f / 60000.0f);  // ms → minutes keeps MSE in a sane range
  *c->add_tasks() = play;
}

void DefaultLabelDelays(SimulatorConfig* s) {
  struct D { LabelKind kind; double median_ms; double sigma; };
  for (D d : {D{LABEL_CLICK, 2000, 0.6}, D{LABEL_LONG_VIEW, 8000, 0.5}, D{LABEL_PLAY_TIME, 8000, 0.5},
              D{LABEL_HATE, 5000, 0.7}, D{LABEL_LIKE, 20000, 0.8}, D{LABEL_FORWARD, 30000, 0.8},
              D{LABEL_COMMENT, 45000, 0.8}, D{LABEL_FOLLOW, 90000, 0.9}, D{LABEL_COLLECT, 40000, 0.8}}) {
    LabelDelayConfig* l = s->add_label_delays();
    l->set_kind(d.kind);
    l->set_median_ms(d.median_ms);
    l->set_log_sigma(d.sigma);
  }
}

// Builds "field = value: problem" errors.
class Checker {
 public:
  template <typename T>
  void Require(bool ok, const std::string& field, const T& value, const std::string& problem) {
    if (ok || !first_.ok()) return;
    std::ostringstream os;
    os << field << " = " << value << ": " << problem;
    first_ = InvalidArgumentError(os.str());
  }
  Status result() const { return first_; }

 private:
  Status first_;
};

bool ValidTopic(const std::string& t) {
  if (t.empty() || t.size() > 249) return false;
  for (char c : t) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

bool ValidTaskName(const std::string& n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

bool ValidPort(int p) { return p >= 0 && p <= 65535; }

// The simulator's feature layout (ops/simulator.h): 8 sparse slots (user, item,
// author, category, region, device, hour, tags) and 8 one-value dense slots.
void DefaultSlots(ModelConfig* model) {
  for (uint32_t slot = 0; slot < 8; ++slot) {
    SparseSlotConfig* s = model->add_sparse_slots();
    s->set_slot(slot);
    s->set_dim(16);
    s->set_pooling(slot == 7 ? POOL_MEAN : POOL_SUM);  // tags are multi-valued
  }
  for (uint32_t slot = 0; slot < 8; ++slot) {
    DenseSlotConfig* d = model->add_dense_slots();
    d->set_slot(slot);
    d->set_width(1);
  }
}

// TWIN over the simulator's item slot, sized so the CPU learner keeps up on two cores
// (histories grow for the whole run; GSU searches the newest max_len). A config with
// its own slot layout (configs/reference.pbtxt) keeps TWIN off unless it asks.
void DefaultTwin(FreshetConfig* config) {
  TwinConfig* t = config->mutable_learner()->mutable_model()->mutable_twin();
  if (t->has_enabled()) return;  // the config decided
  t->set_enabled(true);
  t->set_item_slot(1);
  if (!t->has_max_len()) t->set_max_len(1000);
  if (!t->has_top_k()) t->set_top_k(32);
  if (!t->has_heads()) t->set_heads(2);
  if (!t->has_key_dim()) t->set_key_dim(8);
  if (!t->has_value_dim()) t->set_value_dim(8);
  if (!t->has_output_dim()) t->set_output_dim(16);
  if (!t->has_cross_dim()) t->set_cross_dim(4);
  // play_time_task stays unset: the simulator's play_time label is in ms, the cache
  // expects seconds.
}

// Learning rates for the simulator's traffic. The proto defaults (Adam 1e-3, Adagrad
// 0.05) are the papers' offline settings; one pass over fresh traffic learns far too
// slowly with them. `freshet eval --data simulator --mode prequential --window 10000
// --rows 40000 --test-rows 0`, newest-10k click AUC: 0.527 with the proto defaults,
// 0.544 at 3e-3/0.1, 0.581 at 1e-2/0.3 (docs/evaluation.md has the table). A config
// that sets a rate keeps it.
void DefaultOnlineRates(FreshetConfig* config) {
  LearnerConfig* l = config->mutable_learner();
  if (!l->dense_optimizer().has_learning_rate()) l->mutable_dense_optimizer()->set_learning_rate(0.01f);
  if (!l->sparse_optimizer().has_learning_rate()) l->mutable_sparse_optimizer()->set_learning_rate(0.3f);
}

// The KuaiRand replay's feature layout: 34 sparse slots 8 wide, 5 one-value dense
// slots (ingest/kuairand_replay.h).
void SetKuaiRandSlots(ModelConfig* model) {
  model->clear_sparse_slots();
  model->clear_dense_slots();
  for (uint32_t slot = 0; slot < 34; ++slot) {  // ingest/kuairand_replay.h
    SparseSlotConfig* s = model->add_sparse_slots();
    s->set_slot(slot);
    s->set_dim(8);
    s->set_pooling(slot == 33 ? POOL_MEAN : POOL_SUM);  // tags: one to a few ids
  }
  for (uint32_t slot = 0; slot < 5; ++slot) {
    DenseSlotConfig* d = model->add_dense_slots();
    d->set_slot(slot);
    d->set_width(1);
  }
}

}  // namespace

StatusOr<FreshetConfig> ParseConfigText(const std::string& text, const std::string& source) {
  FreshetConfig config;
  pb::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return InvalidArgumentError("config " + source + ": " + errors.first());
  }
  return config;
}

StatusOr<FreshetConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read config file " + path + " (check the path passed to --config)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigText(ss.str(), path);
}

void ApplyDefaults(FreshetConfig* config) {
  if (config->tasks_size() == 0) DefaultTasks(config);
  ModelConfig* model = config->mutable_learner()->mutable_model();
  if (model->sparse_slots_size() == 0 && model->dense_slots_size() == 0) {
    if (config->replay().dataset() == "kuairand") {
      SetKuaiRandSlots(model);
    } else {
      DefaultSlots(model);
      DefaultOnlineRates(config);  // measured on the simulator's traffic only
    }
    DefaultTwin(config);  // item slot 1: the simulator's item and KuaiRand's video
  }
  if (config->simulator().label_delays_size() == 0) DefaultLabelDelays(config->mutable_simulator());
  FillDefaults(config);
}

FreshetConfig DefaultConfig() {
  FreshetConfig c;
  ApplyDefaults(&c);
  return c;
}

Status Validate(const FreshetConfig& c) {
  Checker v;
  const KafkaConfig& k = c.kafka();
  v.Require(k.embedded_brokers() >= 1 && k.embedded_brokers() <= 16, "kafka.embedded_brokers", k.embedded_brokers(), "must be in [1, 16]");
  v.Require(k.partitions() >= 1 && k.partitions() <= 1024, "kafka.partitions", k.partitions(), "must be in [1, 1024]");
  for (auto [name, value] : {std::pair{"kafka.impressions_topic", &k.impressions_topic()},
                             std::pair{"kafka.labels_topic", &k.labels_topic()},
                             std::pair{"kafka.samples_topic", &k.samples_topic()},
                             std::pair{"kafka.deadletter_topic", &k.deadletter_topic()}}) {
    v.Require(ValidTopic(*value), name, "\"" + *value + "\"", "topic names use [a-zA-Z0-9._-], 1-249 chars");
  }
  std::set<std::string> topics = {k.impressions_topic(), k.labels_topic(), k.samples_topic(), k.deadletter_topic()};
  v.Require(topics.size() == 4, "kafka.*_topic", "(duplicate)", "the four topic names must differ");
  v.Require(k.session_timeout_ms() >= 1000, "kafka.session_timeout_ms", k.session_timeout_ms(), "must be >= 1000");
  v.Require(k.max_message_bytes() >= 1024, "kafka.max_message_bytes", k.max_message_bytes(), "must be >= 1024");
  v.Require(k.linger_ms() >= 0, "kafka.linger_ms", k.linger_ms(), "must be >= 0");

  const AdminConfig& a = c.admin();
  v.Require(ValidPort(a.ingest_port()), "admin.ingest_port", a.ingest_port(), "must be a port in [0, 65535]");
  v.Require(ValidPort(a.learner_port()), "admin.learner_port", a.learner_port(), "must be a port in [0, 65535]");
  v.Require(ValidPort(a.serving_base_port()), "admin.serving_base_port", a.serving_base_port(), "must be a port in [0, 65535]");

  const SimulatorConfig& s = c.simulator();
  v.Require(s.impressions_per_second() > 0 && s.impressions_per_second() <= 1e6, "simulator.impressions_per_second",
            s.impressions_per_second(), "must be in (0, 1000000]");
  v.Require(s.num_users() >= 1, "simulator.num_users", s.num_users(), "must be >= 1");
  v.Require(s.num_items() >= 1, "simulator.num_items", s.num_items(), "must be >= 1");
  v.Require(s.num_authors() >= 1, "simulator.num_authors", s.num_authors(), "must be >= 1");
  v.Require(s.num_categories() >= 1, "simulator.num_categories", s.num_categories(), "must be >= 1");
  v.Require(s.latent_dim() >= 1 && s.latent_dim() <= 256, "simulator.latent_dim", s.latent_dim(), "must be in [1, 256]");
  v.Require(s.item_popularity_zipf() >= 0, "simulator.item_popularity_zipf", s.item_popularity_zipf(), "must be >= 0");
  v.Require(s.user_activity_zipf() >= 0, "simulator.user_activity_zipf", s.user_activity_zipf(), "must be >= 0");
  v.Require(s.base_ctr() > 0 && s.base_ctr() < 1, "simulator.base_ctr", s.base_ctr(), "must be in (0, 1)");
  v.Require(s.early_label_fraction() >= 0 && s.early_label_fraction() <= 1, "simulator.early_label_fraction",
            s.early_label_fraction(), "must be in [0, 1]");
  v.Require(s.max_impressions() >= 0, "simulator.max_impressions", s.max_impressions(), "must be >= 0 (0 = no limit)");
  for (int i = 0; i < s.label_delays_size(); ++i) {
    const auto& d = s.label_delays(i);
    std::string f = "simulator.label_delays[" + std::to_string(i) + "]";
    v.Require(d.kind() != LABEL_KIND_UNSPECIFIED, f + ".kind", LabelKind_Name(d.kind()), "must name a label kind");
    v.Require(d.median_ms() > 0, f + ".median_ms", d.median_ms(), "must be > 0");
    v.Require(d.log_sigma() >= 0 && d.log_sigma() <= 5, f + ".log_sigma", d.log_sigma(), "must be in [0, 5]");
  }

  v.Require(c.tasks_size() >= 1, "tasks", c.tasks_size(), "at least one task is needed");
  std::set<std::string> names;
  for (int i = 0; i < c.tasks_size(); ++i) {
    const TaskConfig& t = c.tasks(i);
    std::string f = "tasks[" + std::to_string(i) + "]";
    v.Require(ValidTaskName(t.name()), f + ".name", "\"" + t.name() + "\"", "must match [a-z0-9_]+");
    v.Require(names.insert(t.name()).second, f + ".name", "\"" + t.name() + "\"", "duplicate task name");
    v.Require(t.label_kinds_size() > 0, f + ".label_kinds", "[]", "name at least one label kind that sets the task");
    for (int j = 0; j < t.label_kinds_size(); ++j) {
      v.Require(t.label_kinds(j) != LABEL_KIND_UNSPECIFIED, f + ".label_kinds[" + std::to_string(j) + "]",
                "LABEL_KIND_UNSPECIFIED", "must name a label kind");
    }
    v.Require(t.window_ms() > 0 && t.window_ms() <= 7LL * 24 * 3600 * 1000, f + ".window_ms", t.window_ms(), "must be in (0, 7 days]");
    v.Require(std::isfinite(t.loss_weight()) && t.loss_weight() >= 0, f + ".loss_weight", t.loss_weight(), "must be finite and >= 0");
    v.Require(std::isfinite(t.value_scale()) && t.value_scale() != 0, f + ".value_scale", t.value_scale(), "must be finite and non-zero");
    v.Require(t.home_group() == "watch" || t.home_group() == "interaction", f + ".home_group", "\"" + t.home_group() + "\"",
              "must be \"watch\" or \"interaction\"");
    v.Require(t.auc_floor() >= 0 && t.auc_floor() <= 1, f + ".auc_floor", t.auc_floor(), "must be in [0, 1]");
    if (!t.requires_positive().empty()) {
      int dep = TaskIndex(c, t.requires_positive());
      v.Require(dep >= 0, f + ".requires_positive", "\"" + t.requires_positive() + "\"", "names no configured task");
      v.Require(dep < 0 || c.tasks(dep).type() == TASK_BINARY, f + ".requires_positive", "\"" + t.requires_positive() + "\"",
                "must name a binary task");
      v.Require(dep != i, f + ".requires_positive",
                "\"" + t.requires_positive() + "\"", "a task cannot require itself");
    }
  }

  const IngestConfig& in = c.ingest();
  v.Require(in.allowed_lateness_ms() >= 0, "ingest.allowed_lateness_ms", in.allowed_lateness_ms(), "must be >= 0");
  v.Require(in.orphan_ttl_ms() > 0, "ingest.orphan_ttl_ms", in.orphan_ttl_ms(), "must be > 0");
  v.Require(in.max_orphans_per_partition() > 0, "ingest.max_orphans_per_partition", in.max_orphans_per_partition(), "must be > 0");
  v.Require(in.max_open_impressions_per_partition() > 0, "ingest.max_open_impressions_per_partition",
            in.max_open_impressions_per_partition(), "must be > 0");
  v.Require(in.max_impression_age_ms() > 0, "ingest.max_impression_age_ms", in.max_impression_age_ms(), "must be > 0");
  v.Require(in.checkpoint_interval_ms() >= 10, "ingest.checkpoint_interval_ms", in.checkpoint_interval_ms(), "must be >= 10");
  v.Require(in.correction_horizon_ms() >= 0, "ingest.correction_horizon_ms", in.correction_horizon_ms(), "must be >= 0");
  v.Require(in.max_future_skew_ms() > 0, "ingest.max_future_skew_ms", in.max_future_skew_ms(), "must be > 0");
  v.Require(in.idle_input_ms() > 0, "ingest.idle_input_ms", in.idle_input_ms(), "must be > 0");
  v.Require(in.join_threads() >= 1 && in.join_threads() <= 64, "ingest.join_threads", in.join_threads(),
            "must be in [1, 64]");
  v.Require(!in.consumer_group().empty(), "ingest.consumer_group", "\"\"", "must name a consumer group");

  const LearnerConfig& l = c.learner();
  v.Require(l.batch_size() >= 1 && l.batch_size() <= 1 << 20, "learner.batch_size", l.batch_size(), "must be in [1, 1048576]");
  v.Require(l.batch_deadline_ms() >= 0, "learner.batch_deadline_ms", l.batch_deadline_ms(), "must be >= 0 (0: size-only batches)");
  v.Require(l.queue_capacity() >= 1 && l.queue_capacity() <= 1 << 24, "learner.queue_capacity", l.queue_capacity(), "must be in [1, 16777216]");
  v.Require(!l.consumer_group().empty(), "learner.consumer_group", "\"\"", "must name a consumer group");
  v.Require(l.dedup_horizon_ms() >= 0, "learner.dedup_horizon_ms", l.dedup_horizon_ms(), "must be >= 0");
  v.Require(l.dedup_max_entries() >= 1, "learner.dedup_max_entries", l.dedup_max_entries(), "must be >= 1");
  v.Require(l.checkpoint_interval_ms() >= 10, "learner.checkpoint_interval_ms", l.checkpoint_interval_ms(), "must be >= 10");
  v.Require(l.checkpoints_retained() >= 1, "learner.checkpoints_retained", l.checkpoints_retained(), "must be >= 1");
  v.Require(l.diagnostics_interval_ms() >= 10, "learner.diagnostics_interval_ms", l.diagnostics_interval_ms(), "must be >= 10");
  v.Require(l.zero_share_warning() > 0 && l.zero_share_warning() <= 1, "learner.zero_share_warning", l.zero_share_warning(), "must be in (0, 1]");
  v.Require(l.occupancy_warning() > 0 && l.occupancy_warning() <= 1, "learner.occupancy_warning", l.occupancy_warning(), "must be in (0, 1]");
  v.Require(l.eval_window() >= 1, "learner.eval_window", l.eval_window(), "must be >= 1");
  v.Require(l.metrics_interval_ms() >= 10, "learner.metrics_interval_ms", l.metrics_interval_ms(), "must be >= 10");
  v.Require(l.eviction_interval_ms() >= 10, "learner.eviction_interval_ms", l.eviction_interval_ms(), "must be >= 10");
  v.Require(l.correction_weight_cap() >= 1, "learner.correction_weight_cap", l.correction_weight_cap(), "must be >= 1");
  const TwinConfig& tw = l.model().twin();
  if (tw.enabled()) {
    bool slot_known = false;
    for (const auto& s : l.model().sparse_slots()) slot_known |= s.slot() == tw.item_slot();
    v.Require(slot_known, "learner.model.twin.item_slot", tw.item_slot(), "must be one of learner.model.sparse_slots");
    v.Require(tw.max_len() >= 1 && tw.max_len() <= 100000, "learner.model.twin.max_len", tw.max_len(), "must be in [1, 100000]");
    v.Require(tw.top_k() >= 1 && tw.top_k() <= tw.max_len(), "learner.model.twin.top_k", tw.top_k(), "must be in [1, max_len]");
    v.Require(tw.heads() >= 1 && tw.heads() <= 64, "learner.model.twin.heads", tw.heads(), "must be in [1, 64]");
    v.Require(tw.key_dim() >= 1, "learner.model.twin.key_dim", tw.key_dim(), "must be >= 1");
    v.Require(tw.value_dim() >= 1, "learner.model.twin.value_dim", tw.value_dim(), "must be >= 1");
    v.Require(tw.output_dim() >= 1, "learner.model.twin.output_dim", tw.output_dim(), "must be >= 1");
    v.Require(tw.cross_dim() >= 1, "learner.model.twin.cross_dim", tw.cross_dim(), "must be >= 1");
    v.Require(tw.refresh_after_versions() >= 0, "learner.model.twin.refresh_after_versions", tw.refresh_after_versions(), "must be >= 0");
    v.Require(tw.projection_cache_items() >= 1, "learner.model.twin.projection_cache_items", tw.projection_cache_items(), "must be >= 1");
    v.Require(tw.consistency_samples() >= 0, "learner.model.twin.consistency_samples", tw.consistency_samples(), "must be >= 0");
    v.Require(tw.consistency_interval_steps() >= 1, "learner.model.twin.consistency_interval_steps",
              tw.consistency_interval_steps(), "must be >= 1");
  }

  const PublisherConfig& p = c.publisher();
  v.Require(p.publish_interval_ms() >= 10, "publisher.publish_interval_ms", p.publish_interval_ms(), "must be >= 10");
  v.Require(p.full_every_versions() >= 1, "publisher.full_every_versions", p.full_every_versions(), "must be >= 1");
  v.Require(p.retain_full_snapshots() >= 1, "publisher.retain_full_snapshots", p.retain_full_snapshots(), "must be >= 1");
  v.Require(p.max_delta_rows() >= 1, "publisher.max_delta_rows", p.max_delta_rows(), "must be >= 1");
  v.Require(p.reconnect_initial_ms() >= 1, "publisher.reconnect_initial_ms", p.reconnect_initial_ms(), "must be >= 1");
  v.Require(p.reconnect_max_ms() >= p.reconnect_initial_ms(), "publisher.reconnect_max_ms", p.reconnect_max_ms(),
            "must be >= publisher.reconnect_initial_ms");
  for (int i = 0; i < p.gate_floors_size(); ++i) {
    const PublisherGateFloor& f = p.gate_floors(i);
    const std::string path = "publisher.gate_floors[" + std::to_string(i) + "]";
    bool known = false;
    for (const TaskConfig& t : c.tasks()) known = known || (t.name() == f.task() && t.type() == TASK_BINARY);
    v.Require(known, path + ".task", f.task(), "must name a binary task in tasks[]");
    v.Require(f.min_auc() >= 0 && f.min_auc() <= 1, path + ".min_auc", f.min_auc(), "must be in [0, 1]");
    v.Require(f.min_count() >= 1, path + ".min_count", f.min_count(), "must be >= 1");
  }
  for (int i = 0; i < p.replicas_size(); ++i) {
    const std::string& r = p.replicas(i);
    const size_t colon = r.rfind(':');
    v.Require(colon != std::string::npos && colon > 0 && colon + 1 < r.size(),
              "publisher.replicas[" + std::to_string(i) + "]", r, "must be host:port");
  }

  const ServingConfig& sv = c.serving();
  v.Require(sv.replicas() >= 0 && sv.replicas() <= 64, "serving.replicas", sv.replicas(), "must be in [0, 64]");
  v.Require(ValidPort(sv.push_base_port()), "serving.push_base_port", sv.push_base_port(), "must be a port in [0, 65535]");
  v.Require(!sv.push_bind_address().empty(), "serving.push_bind_address", "\"\"", "must name an address, e.g. 127.0.0.1");
  v.Require(sv.max_frame_bytes() >= 1024, "serving.max_frame_bytes", sv.max_frame_bytes(), "must be >= 1024");
  v.Require(sv.max_score_items() >= 1 && sv.max_score_items() <= 100000, "serving.max_score_items",
            sv.max_score_items(), "must be in [1, 100000]");
  v.Require(sv.behaviour_cache_dir().empty() || c.learner().model().twin().enabled(), "serving.behaviour_cache_dir",
            "\"" + sv.behaviour_cache_dir() + "\"", "needs learner.model.twin.enabled (histories feed the TWIN module)");

  v.Require(!c.store().data_dir().empty(), "store.data_dir", "\"\"", "must name a directory");
  v.Require(c.replay().dataset().empty() || c.replay().dataset() == "kuairand", "replay.dataset",
            "\"" + c.replay().dataset() + "\"", "must be \"\" (the simulator) or \"kuairand\"");
  v.Require(c.replay().impressions_per_second() >= 0 && std::isfinite(c.replay().impressions_per_second()),
            "replay.impressions_per_second", c.replay().impressions_per_second(), "must be >= 0 (0: unpaced)");
  v.Require(c.log_level() == "debug" || c.log_level() == "info" || c.log_level() == "warning" || c.log_level() == "error",
            "log_level", "\"" + c.log_level() + "\"", "must be debug, info, warning or error");
  return v.result();
}

std::string ConfigToText(const FreshetConfig& config) {
  std::string out;
  pb::TextFormat::Printer printer;
  printer.PrintToString(config, &out);
  return out;
}

StatusOr<FreshetConfig> LoadEffectiveConfig(const std::string& path, const FreshetConfig& overrides) {
  FreshetConfig config;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(config, LoadConfigFile(path));
  }
  config.MergeFrom(overrides);
  ApplyDefaults(&config);
  Status s = Validate(config);
  if (!s.ok()) return s.Annotate(path.empty() ? "default config" : "config " + path);
  return config;
}

int TaskIndex(const FreshetConfig& config, const std::string& name) {
  for (int i = 0; i < config.tasks_size(); ++i) {
    if (config.tasks(i).name() == name) return i;
  }
  return -1;
}

}  // namespace freshet::ops
