// EventSource: the simulator and the KuaiRand replay behind one interface; see
// event_source.h.
#include "ops/event_source.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "ingest/kuairand_replay.h"
#include "ingest/task_rules.h"
#include "ingest/watermark_flush.h"
#include "ops/simulator.h"

namespace freshet::ops {
namespace {

constexpr const char* kKuaiRandLog = "kuairand-pure/log_standard_4_25_to_4_30_pure.csv.gz";
// At impressions_per_second 0, impressions emitted per AdvanceTo call, so the run's
// loop still reports progress and notices Ctrl-C.
constexpr uint64_t kUnpacedBurst = 2000;

class SimulatorSource : public EventSource {
 public:
  SimulatorSource(const SimulatorConfig& config, int64_t start_ms) : config_(config), sim_(config, start_ms) {}
  Status AdvanceTo(int64_t now_ms, ingest::EventSink* sink) override {
    newest_ms_ = std::max(newest_ms_, now_ms);
    return sim_.AdvanceTo(now_ms, sink);
  }
  Stats stats() const override { return {sim_.stats().impressions, sim_.stats().labels, sim_.stats().labels_by_kind}; }
  size_t pending_events() const override { return sim_.pending_events(); }
  int64_t newest_event_ms() const override { return newest_ms_; }
  std::string Describe() const override {
    char buf[160];
    std::snprintf(buf, sizeof buf, "simulator seed=%" PRIu64 " rate=%.0f impressions/s users=%d items=%d",
                  config_.seed(), config_.impressions_per_second(), config_.num_users(), config_.num_items());
    return buf;
  }
  std::string kind() const override { return "simulator"; }

 private:
  SimulatorConfig config_;
  TrafficSimulator sim_;
  int64_t newest_ms_ = 0;
};

// Stamps every event with the wall-clock time it is sent (never earlier than the
// previous one), so the replayed log reads as a live stream.
class StampingSink : public ingest::EventSink {
 public:
  StampingSink(ingest::EventSink* next, int64_t now_ms, int64_t newest_ms)
      : next_(next), stamp_ms_(std::max(now_ms, newest_ms)), newest_ms_(newest_ms) {}
  Status OnImpression(const Impression& impression) override {
    return Forward(impression, [this](const Impression& e) { return next_->OnImpression(e); });
  }
  Status OnLabel(const Label& label) override {
    return Forward(label, [this](const Label& e) { return next_->OnLabel(e); });
  }
  int64_t newest_ms() const { return newest_ms_; }

 private:
  template <typename Event, typename Send>
  Status Forward(const Event& event, Send send) {
    Event stamped = event;
    stamped.set_event_time_ms(stamp_ms_);
    RETURN_IF_ERROR(send(stamped));
    newest_ms_ = std::max(newest_ms_, stamp_ms_);
    return Status::Ok();
  }

  ingest::EventSink* next_;
  int64_t stamp_ms_;
  int64_t newest_ms_;
};

class KuaiRandSource : public EventSource {
 public:
  KuaiRandSource(const ReplayConfig& config, std::string log_path, std::unique_ptr<ingest::KuaiRandReplay> replay,
                 int64_t start_ms)
      : config_(config), log_path_(std::move(log_path)), replay_(std::move(replay)), start_ms_(start_ms) {}

  Status AdvanceTo(int64_t now_ms, ingest::EventSink* sink) override {
    const double rate = config_.impressions_per_second();
    const uint64_t emitted = replay_->stats().impressions;
    const uint64_t due = rate > 0 ? static_cast<uint64_t>(std::max<int64_t>(0, now_ms - start_ms_) * rate / 1000.0)
                                  : emitted + kUnpacedBurst;
    StampingSink stamped(sink, now_ms, newest_ms_);
    Status s = Status::Ok();
    // Each step emits every event at the next event time: an impression, or labels
    // that fall due before the next row (after the log's last row: only labels).
    while (s.ok() && replay_->stats().impressions < due) {
      const std::optional<int64_t> next = replay_->NextEventMs();
      if (!next) break;
      s = replay_->AdvanceTo(*next, &stamped);
    }
    newest_ms_ = std::max(newest_ms_, stamped.newest_ms());
    return s;
  }
  Stats stats() const override {
    const auto& st = replay_->stats();
    return {st.impressions, st.labels, st.labels_by_kind};
  }
  // The replay holds labels until their time; it does not expose how many.
  size_t pending_events() const override { return 0; }
  bool finished() override { return replay_->done(); }
  int64_t newest_event_ms() const override { return newest_ms_; }
  std::string Describe() const override {
    char rate[48] = "as fast as Kafka takes them";
    if (config_.impressions_per_second() > 0)
      std::snprintf(rate, sizeof rate, "%.0f impressions/s", config_.impressions_per_second());
    return "replay kuairand " + log_path_ + " users=" + std::to_string(replay_->stats().users_with_features) +
           " videos=" + std::to_string(replay_->stats().videos_with_features) + " rate=" + rate +
           " (in log order, stamped with the time they are sent)";
  }
  std::string kind() const override { return "replay"; }

 private:
  ReplayConfig config_;
  std::string log_path_;
  std::unique_ptr<ingest::KuaiRandReplay> replay_;
  int64_t start_ms_;
  int64_t newest_ms_ = 0;
};

}  // namespace

std::unique_ptr<EventSource> NewSimulatorSource(const SimulatorConfig& config, int64_t start_ms) {
  return std::make_unique<SimulatorSource>(config, start_ms);
}

StatusOr<std::string> FindKuaiRandLog(const ReplayConfig& config, const std::string& data_dir) {
  const std::string path = config.log_path().empty() ? data_dir + "/" + kKuaiRandLog : config.log_path();
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return path;
  if (!config.log_path().empty())
    return NotFoundError("replay.log_path = " + path + ": no such file (a KuaiRand-Pure log_standard_*_pure.csv.gz, "
                         "with user_features_pure.csv.gz and video_features_basic_pure.csv.gz beside it)");
  return NotFoundError("the KuaiRand-Pure data set is not at " + path + " (looked in the data folder " + data_dir +
                       "); set FRESHET_DATA_DIR to the folder holding kuairand-pure/, or replay.log_path in the config");
}

StatusOr<std::unique_ptr<EventSource>> OpenKuaiRandSource(const ReplayConfig& config, const std::string& log_path,
                                                          int64_t start_ms) {
  ASSIGN_OR_RETURN(std::unique_ptr<ingest::KuaiRandReplay> replay, ingest::KuaiRandReplay::Open({log_path, "", ""}));
  if (!replay->NextEventMs()) return InvalidArgumentError("the KuaiRand log " + log_path + " has no rows");
  return std::unique_ptr<EventSource>(new KuaiRandSource(config, log_path, std::move(replay), start_ms));
}

Status FlushWindowsAfter(int64_t newest_event_ms, const FreshetConfig& config, ingest::KafkaProducer* producer,
                         int64_t* flushed_to) {
  ASSIGN_OR_RETURN(ingest::TaskRules rules, ingest::TaskRules::Create(config));
  const int64_t t = newest_event_ms + rules.max_window_ms() + config.ingest().allowed_lateness_ms() + 1;
  ASSIGN_OR_RETURN(int partitions, producer->PartitionCount(config.kafka().impressions_topic()));
  RETURN_IF_ERROR(ingest::ProduceWatermarkFlush(producer, config.kafka(), partitions, t));
  if (flushed_to != nullptr) *flushed_to = t;
  return Status::Ok();
}

}  // namespace freshet::ops
