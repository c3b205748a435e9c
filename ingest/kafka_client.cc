// KafkaProducer and KafkaConsumer over librdkafka's C API; see kafka_client.h.
#include "ingest/kafka_client.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/logging.h"

namespace freshet::ingest {
namespace {

// Builds an rd_kafka_conf_t; on failure names the property and the value.
StatusOr<rd_kafka_conf_t*> MakeConf(const KafkaClientOptions& options,
                                    const std::map<std::string, std::string>& fixed) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  std::map<std::string, std::string> all = fixed;
  all["bootstrap.servers"] = options.bootstrap_servers;
  all["client.id"] = options.client_id;
  for (const auto& [k, v] : options.properties) all[k] = v;  // the operator's word wins
  for (const auto& [k, v] : all) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return InvalidArgumentError("kafka property " + k + "=" + v + " rejected: " + err);
    }
  }
  // librdkafka's own log lines become ours: key=value, rate-limited.
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    static RateLimiter limiter(2000);
    int64_t suppressed = 0;
    if (!limiter.Allow(Clock::Real()->NowMs(), &suppressed)) return;
    LogLevel ours = level <= 3 ? LogLevel::kError : level <= 5 ? LogLevel::kWarning : LogLevel::kDebug;
    LogLine(ours, "kafka_client_log").Kv("client", rd_kafka_name(rk)).Kv("facility", fac).Kv("message", buf)
        .Kv("suppressed", suppressed);
  });
  return conf;
}

Status KafkaError(const std::string& what, rd_kafka_resp_err_t err) {
  StatusCode code = StatusCode::kInternal;
  switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      code = StatusCode::kUnavailable;
      break;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      code = StatusCode::kResourceExhausted;
      break;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      code = StatusCode::kNotFound;
      break;
    default:
      break;
  }
  return Status(code, what + ": " + rd_kafka_err2str(err));
}

std::vector<TopicPartitionOffset> FromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartitionOffset> out;
  if (!list) return out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

rd_kafka_topic_partition_list_t* ToList(const std::vector<TopicPartitionOffset>& tps) {
  auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(tps.size()));
  for (const auto& tp : tps) {
    rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition)->offset =
        tp.offset >= 0 ? tp.offset : RD_KAFKA_OFFSET_INVALID;
  }
  return list;
}

StatusOr<int> PartitionCountOf(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, timeout_ms);
  if (err) return KafkaError("metadata request", err);
  int count = -1;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      count = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (count < 0) return NotFoundError("topic " + topic + " does not exist on the cluster");
  return count;
}


// Sends CreateTopics for `topics` and waits for the answer; topics that already
// exist are fine.
Status CreateTopics(rd_kafka_t* rk, const KafkaClientOptions& options, const std::vector<std::string>& topics,
                    int partitions, int replication_factor, int timeout_ms) {
  char err[512];
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  for (const auto& t : topics) {
    new_topics.push_back(rd_kafka_NewTopic_new(t.c_str(), partitions, replication_factor, err, sizeof(err)));
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(admin, timeout_ms, err, sizeof(err));
  rd_kafka_CreateTopics(rk, new_topics.data(), new_topics.size(), admin, queue);
  Status result = Status::Ok();
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, timeout_ms + 2000);
  if (!ev) {
    result = UnavailableError("no answer to CreateTopics from " + options.bootstrap_servers);
  } else if (rd_kafka_event_error(ev)) {
    result = KafkaError("CreateTopics", rd_kafka_event_error(ev));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n && result.ok(); ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        result = KafkaError(std::string("create topic ") + rd_kafka_topic_result_name(results[i]), e);
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  for (auto* nt : new_topics) rd_kafka_NewTopic_destroy(nt);
  rd_kafka_AdminOptions_destroy(admin);
  rd_kafka_queue_destroy(queue);
  return result;
}

}  // namespace

// ---------------------------------------------------------------------------
// Producer

struct KafkaProducer::Impl {
  rd_kafka_t* rk = nullptr;
  Options options;
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> failed{0};
  mutable std::mutex mu;
  Status first_error;  // guarded by mu
  std::atomic<bool> stop{false};
  std::thread poller;  // serves delivery reports
  // Delivery marks: messages are counted by the parity of the epoch they were
  // produced in (the message's opaque); Mark() starts the next epoch. Every epoch
  // before `settled` is known delivered, so a wait for mark == settled only needs its
  // own parity's count to reach zero.
  std::atomic<uint64_t> epoch{0};
  std::atomic<int64_t> undelivered[2] = {0, 0};
  std::mutex mark_mu;
  std::condition_variable mark_cv;
  uint64_t settled = 0;  // guarded by mark_mu
  // Topic handles by name: producing through a handle skips librdkafka's lookup of
  // the name (a lock and a list walk) on every message. Released before rk.
  std::mutex topics_mu;
  std::map<std::string, rd_kafka_topic_t*, std::less<>> topics;  // guarded by topics_mu

  rd_kafka_topic_t* Topic(const std::string& name) {
    std::lock_guard<std::mutex> lock(topics_mu);
    auto it = topics.find(name);
    if (it != topics.end()) return it->second;
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk, name.c_str(), nullptr);
    if (t) topics.emplace(name, t);
    return t;
  }

  // librdkafka's queue is full: waits a little for room (backpressure). *deadline < 0
  // starts the wait's clock; past enqueue_timeout_ms, RESOURCE_EXHAUSTED.
  Status WaitForRoom(const std::string& topic, int64_t* deadline) const {
    const int64_t now_us = Clock::Real()->MonotonicUs();
    if (*deadline < 0) *deadline = now_us + int64_t{options.enqueue_timeout_ms} * 1000;
    if (now_us > *deadline) {
      return ResourceExhaustedError("producer queue full for " + std::to_string(options.enqueue_timeout_ms) +
                                    " ms producing to " + topic + " (is the cluster reachable?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Status::Ok();
  }

  void RecordError(const Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.ok()) first_error = s;
  }
};

StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  ASSIGN_OR_RETURN(rd_kafka_conf_t * conf,
                   MakeConf(options, {{"enable.idempotence", "true"},
                                      {"acks", "all"},
                                      {"linger.ms", std::to_string(options.linger_ms)},
                                      {"partitioner", "murmur2_random"},
                                      {"queue.buffering.max.messages", "1000000"}}));
  rd_kafka_conf_set_opaque(conf, impl.get());
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (m->err) {
      self->failed.fetch_add(1);
      self->RecordError(KafkaError(std::string("delivery to ") + rd_kafka_topic_name(m->rkt), m->err));
    } else {
      self->delivered.fetch_add(1);
    }
    const auto parity = reinterpret_cast<uintptr_t>(m->_private) & 1;
    if (self->undelivered[parity].fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(self->mark_mu);  // the waiter checks under this lock
      self->mark_cv.notify_all();
    }
  });
  rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk, buf, sizeof(buf));
      self->RecordError(KafkaError(std::string("fatal producer error: ") + buf, fatal));
      LOG_ERROR("kafka_producer_fatal").Kv("error", buf);
      return;
    }
    static RateLimiter limiter(5000);
    int64_t suppressed = 0;
    if (limiter.Allow(Clock::Real()->NowMs(), &suppressed)) {
      LOG_WARNING("kafka_producer_error").Kv("error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)))
          .Kv("reason", reason).Kv("suppressed", suppressed);
    }
  });
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgumentError(std::string("cannot create Kafka producer: ") + err);
  }
  Impl* raw = impl.get();
  impl->poller = std::thread([raw] {
    while (!raw->stop.load()) rd_kafka_poll(raw->rk, 100);
  });
  return std::unique_ptr<KafkaProducer>(new KafkaProducer(std::move(impl)));
}

KafkaProducer::KafkaProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaProducer::~KafkaProducer() {
  Status s = Flush(10000);
  if (!s.ok()) LOG_WARNING("kafka_producer_close").Kv("status", s.ToString()).Kv("undelivered", rd_kafka_outq_len(impl_->rk));
  impl_->stop.store(true);
  impl_->poller.join();
  for (auto& [name, t] : impl_->topics) rd_kafka_topic_destroy(t);
  rd_kafka_destroy(impl_->rk);
}

Status KafkaProducer::Produce(const std::string& topic, std::string_view key, std::string_view value,
                              int32_t partition) {
  rd_kafka_topic_t* rkt = impl_->Topic(topic);
  if (!rkt) return KafkaError("produce to " + topic, rd_kafka_last_error());
  int64_t deadline = -1;  // set at the first full queue
  // Counted before it is enqueued: its delivery report may come before producev returns.
  const uintptr_t parity = impl_->epoch.load() & 1;
  std::atomic<int64_t>& undelivered = impl_->undelivered[parity];
  while (true) {
    undelivered.fetch_add(1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        impl_->rk, RD_KAFKA_V_RKT(rkt),
        RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(parity)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
    undelivered.fetch_sub(1);  // not enqueued: no report will come
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return KafkaError("produce to " + topic, err);
    RETURN_IF_ERROR(impl_->WaitForRoom(topic, &deadline));
  }
}

Status KafkaProducer::ProduceBatch(const std::string& topic, std::span<const KeyValue> messages, size_t* enqueued) {
  *enqueued = 0;
  if (messages.empty()) return Status::Ok();
  rd_kafka_topic_t* rkt = impl_->Topic(topic);
  if (!rkt) return KafkaError("produce to " + topic, rd_kafka_last_error());
  const uintptr_t parity = impl_->epoch.load() & 1;
  std::atomic<int64_t>& undelivered = impl_->undelivered[parity];
  std::vector<rd_kafka_message_t> batch(messages.size());
  int64_t deadline = -1;  // set at the first full queue
  size_t done = 0;
  while (done < messages.size()) {
    const size_t n = messages.size() - done;
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_message_t& m = batch[i];
      m = rd_kafka_message_t{};
      m.payload = const_cast<char*>(messages[done + i].value.data());
      m.len = messages[done + i].value.size();
      m.key = const_cast<char*>(messages[done + i].key.data());
      m.key_len = messages[done + i].key.size();
      m._private = reinterpret_cast<void*>(parity);
    }
    // Counted before they are enqueued: a delivery report may come before the call returns.
    undelivered.fetch_add(static_cast<int64_t>(n));
    const int good = rd_kafka_produce_batch(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, batch.data(),
                                            static_cast<int>(n));
    undelivered.fetch_sub(static_cast<int64_t>(n) - good);  // not enqueued: no report will come
    // Enqueued messages form a prefix unless a message failed for its own reason.
    size_t ok = 0;
    while (ok < n && batch[ok].err == RD_KAFKA_RESP_ERR_NO_ERROR) ++ok;
    done += ok;
    *enqueued = done;
    if (ok == n) break;
    const rd_kafka_resp_err_t err = batch[ok].err;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return KafkaError("produce to " + topic, err);
    RETURN_IF_ERROR(impl_->WaitForRoom(topic, &deadline));
  }
  return Status::Ok();
}

Status KafkaProducer::Flush(int timeout_ms) {
  rd_kafka_resp_err_t err = rd_kafka_flush(impl_->rk, timeout_ms);
  Status first = first_error();
  if (!first.ok()) return first;
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return DeadlineExceededError(std::to_string(rd_kafka_outq_len(impl_->rk)) +
                                 " messages still undelivered after " + std::to_string(timeout_ms) + " ms");
  }
  return Status::Ok();
}

uint64_t KafkaProducer::Mark() { return impl_->epoch.fetch_add(1); }

Status KafkaProducer::WaitDelivered(uint64_t mark, int timeout_ms) {
  std::unique_lock<std::mutex> lock(impl_->mark_mu);
  if (impl_->settled > mark) return first_error();
  if (impl_->settled < mark) {  // an earlier mark was not waited for: wait for everything
    lock.unlock();
    RETURN_IF_ERROR(Flush(timeout_ms));
    lock.lock();
  } else {
    const bool drained = impl_->mark_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
      return impl_->undelivered[mark & 1].load() == 0;
    });
    if (Status first = first_error(); !first.ok()) return first;
    if (!drained) {
      return DeadlineExceededError(std::to_string(impl_->undelivered[mark & 1].load()) +
                                   " messages still undelivered after " + std::to_string(timeout_ms) + " ms");
    }
  }
  impl_->settled = std::max(impl_->settled, mark + 1);
  return Status::Ok();
}

void KafkaProducer::Poll(int timeout_ms) { rd_kafka_poll(impl_->rk, timeout_ms); }

Status KafkaProducer::CheckReachable(int timeout_ms) const {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(impl_->rk, 0, nullptr, &md, timeout_ms);
  if (err) return KafkaError("kafka at " + impl_->options.bootstrap_servers + " unreachable", err);
  rd_kafka_metadata_destroy(md);
  return Status::Ok();
}

StatusOr<int> KafkaProducer::PartitionCount(const std::string& topic, int timeout_ms) const {
  return PartitionCountOf(impl_->rk, topic, timeout_ms);
}

uint64_t KafkaProducer::delivered() const { return impl_->delivered.load(); }
uint64_t KafkaProducer::failed() const { return impl_->failed.load(); }
Status KafkaProducer::first_error() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->first_error;
}

// ---------------------------------------------------------------------------
// Consumer

struct KafkaConsumer::Impl {
  rd_kafka_t* rk = nullptr;
  Options options;
  bool closed = false;
  RateLimiter error_limiter{5000};
};

StatusOr<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(const Options& options) {
  if (options.group_id.empty()) return InvalidArgumentError("kafka consumer needs a group_id");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  ASSIGN_OR_RETURN(rd_kafka_conf_t * conf,
                   MakeConf(options, {{"group.id", options.group_id},
                                      {"enable.auto.commit", "false"},
                                      {"enable.auto.offset.store", "false"},
                                      {"auto.offset.reset", options.from_beginning ? "earliest" : "latest"},
                                      {"session.timeout.ms", std::to_string(options.session_timeout_ms)},
                                      // range assigns partition p of every subscribed topic to the
                                      // same member: impressions and labels stay co-partitioned.
                                      {"partition.assignment.strategy", "range"},
                                      // librdkafka 2.0 stops fetching for a fixed 1000 ms once the
                                      // local queue holds queued.min.messages (100k by default,
                                      // counted over the whole consumer queue): a reader slower than
                                      // the fetcher then drains the queue and sits idle (0.7 s
                                      // stalls in bench_ingest). Let the byte bound govern instead:
                                      // 64 MB is seconds of input at the joiner's rate.
                                      {"queued.min.messages", "10000000"},
                                      {"queued.max.messages.kbytes", "65536"}}));
  rd_kafka_conf_set_opaque(conf, impl.get());
  rd_kafka_conf_set_rebalance_cb(
      conf, [](rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
        auto* self = static_cast<Impl*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
          std::vector<TopicPartitionOffset> tps = FromList(parts);
          if (self->options.on_assign) self->options.on_assign(&tps);
          rd_kafka_topic_partition_list_t* list = ToList(tps);
          rd_kafka_assign(rk, list);
          rd_kafka_topic_partition_list_destroy(list);
          LOG_INFO("kafka_partitions_assigned").Kv("group", self->options.group_id).Kv("count", tps.size());
        } else {
          if (self->options.on_revoke) self->options.on_revoke(FromList(parts));
          rd_kafka_assign(rk, nullptr);
          LOG_INFO("kafka_partitions_revoked").Kv("group", self->options.group_id).Kv("count", parts ? parts->cnt : 0);
        }
      });
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgumentError(std::string("cannot create Kafka consumer: ") + err);
  }
  rd_kafka_poll_set_consumer(impl->rk);
  return std::unique_ptr<KafkaConsumer>(new KafkaConsumer(std::move(impl)));
}

KafkaConsumer::KafkaConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaConsumer::~KafkaConsumer() {
  Status s = Close();
  if (!s.ok()) LOG_WARNING("kafka_consumer_close").Kv("status", s.ToString());
  rd_kafka_destroy(impl_->rk);
}

Status KafkaConsumer::Subscribe(const std::vector<std::string>& topics) {
  auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(impl_->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err) return KafkaError("subscribe", err);
  return Status::Ok();
}

StatusOr<std::optional<KafkaMessage>> KafkaConsumer::Poll(int timeout_ms) {
  KafkaMessage out;
  ASSIGN_OR_RETURN(bool got, PollInto(timeout_ms, &out));
  if (!got) return std::optional<KafkaMessage>();
  return std::optional<KafkaMessage>(std::move(out));
}

StatusOr<bool> KafkaConsumer::PollInto(int timeout_ms, KafkaMessage* out) {
  rd_kafka_message_t* m = rd_kafka_consumer_poll(impl_->rk, timeout_ms);
  if (!m) return false;
  if (m->err) {
    rd_kafka_resp_err_t err = m->err;
    std::string what = m->rkt ? rd_kafka_topic_name(m->rkt) : "consumer";
    rd_kafka_message_destroy(m);
    if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return false;
    char buf[512];
    if (rd_kafka_fatal_error(impl_->rk, buf, sizeof(buf))) {
      return InternalError(std::string("fatal consumer error: ") + buf);
    }
    int64_t suppressed = 0;
    if (impl_->error_limiter.Allow(Clock::Real()->NowMs(), &suppressed)) {
      LOG_WARNING("kafka_consumer_error").Kv("source", what).Kv("error", rd_kafka_err2str(err)).Kv("suppressed", suppressed);
    }
    return false;
  }
  out->topic.assign(rd_kafka_topic_name(m->rkt));
  out->partition = m->partition;
  out->offset = m->offset;
  out->key.assign(m->key ? static_cast<const char*>(m->key) : "", m->key ? m->key_len : 0);
  out->value.assign(m->payload ? static_cast<const char*>(m->payload) : "", m->payload ? m->len : 0);
  rd_kafka_timestamp_type_t ts_type;
  out->timestamp_ms = rd_kafka_message_timestamp(m, &ts_type);
  rd_kafka_message_destroy(m);
  return true;
}

Status KafkaConsumer::Commit(const std::vector<TopicPartitionOffset>& offsets, bool async) {
  if (offsets.empty()) return Status::Ok();
  rd_kafka_topic_partition_list_t* list = ToList(offsets);
  rd_kafka_resp_err_t err = rd_kafka_commit(impl_->rk, list, async ? 1 : 0);
  Status result = err ? KafkaError("commit offsets", err) : Status::Ok();
  for (int i = 0; result.ok() && i < list->cnt; ++i) {
    if (list->elems[i].err) result = KafkaError("commit offset of " + std::string(list->elems[i].topic), list->elems[i].err);
  }
  rd_kafka_topic_partition_list_destroy(list);
  return result;
}

Status KafkaConsumer::CommitMessage(const KafkaMessage& message) {
  return Commit({{message.topic, message.partition, message.offset + 1}});
}

StatusOr<std::vector<TopicPartitionOffset>> KafkaConsumer::Committed(int timeout_ms) {
  rd_kafka_topic_partition_list_t* list = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_assignment(impl_->rk, &list);
  if (err) return KafkaError("read assignment", err);
  err = rd_kafka_committed(impl_->rk, list, timeout_ms);
  std::vector<TopicPartitionOffset> out = FromList(list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err) return KafkaError("read committed offsets", err);
  return out;
}

std::vector<TopicPartitionOffset> KafkaConsumer::Assignment() const {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(impl_->rk, &list)) return {};
  std::vector<TopicPartitionOffset> out = FromList(list);
  rd_kafka_topic_partition_list_destroy(list);
  return out;
}

std::vector<PartitionLag> KafkaConsumer::Lag() const {
  std::vector<PartitionLag> out;
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(impl_->rk, &list)) return out;
  if (rd_kafka_position(impl_->rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = list->elems[i];
      PartitionLag lag{tp.topic, tp.partition, tp.offset >= 0 ? tp.offset : -1, -1, -1};
      int64_t low = RD_KAFKA_OFFSET_INVALID, high = RD_KAFKA_OFFSET_INVALID;
      if (rd_kafka_get_watermark_offsets(impl_->rk, tp.topic, tp.partition, &low, &high) ==
              RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0) {
        lag.high_watermark = high;
        if (lag.position >= 0) {
          lag.lag = std::max<int64_t>(0, high - lag.position);
        } else if (low >= 0 && low == high) {
          lag.lag = 0;  // nothing read yet, nothing to read
        }
      }
      out.push_back(std::move(lag));
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return out;
}

Status KafkaConsumer::Pause(const std::vector<TopicPartitionOffset>& partitions) {
  if (partitions.empty()) return Status::Ok();
  rd_kafka_topic_partition_list_t* list = ToList(partitions);
  rd_kafka_resp_err_t err = rd_kafka_pause_partitions(impl_->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  return err ? KafkaError("pause partitions", err) : Status::Ok();
}

Status KafkaConsumer::Resume(const std::vector<TopicPartitionOffset>& partitions) {
  if (partitions.empty()) return Status::Ok();
  rd_kafka_topic_partition_list_t* list = ToList(partitions);
  rd_kafka_resp_err_t err = rd_kafka_resume_partitions(impl_->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  return err ? KafkaError("resume partitions", err) : Status::Ok();
}

Status KafkaConsumer::Close() {
  if (impl_->closed) return Status::Ok();
  impl_->closed = true;
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(impl_->rk);
  if (err) return KafkaError("close consumer", err);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Topic creation on real clusters

Status EnsureTopics(const KafkaClientOptions& options, const std::vector<std::string>& topics,
                    int partitions, int replication_factor, int timeout_ms) {
  ASSIGN_OR_RETURN(rd_kafka_conf_t * conf, MakeConf(options, {}));
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgumentError(std::string("cannot create Kafka admin client: ") + err);
  }
  // Which topics exist already? This also fails fast, with the address, when nothing
  // answers at all.
  std::vector<std::string> missing;
  {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t merr = rd_kafka_metadata(rk, 1, nullptr, &md, 5000);
    if (merr) {
      rd_kafka_destroy(rk);
      return UnavailableError("no Kafka broker at " + options.bootstrap_servers + " answered within 5 s (" +
                              rd_kafka_err2str(merr) + ")");
    }
    for (const auto& t : topics) {
      bool found = false;
      for (int i = 0; i < md->topic_cnt; ++i) {
        found |= t == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
      }
      if (!found) missing.push_back(t);
    }
    rd_kafka_metadata_destroy(md);
  }
  Status result = Status::Ok();
  if (!missing.empty()) result = CreateTopics(rk, options, missing, partitions, replication_factor, timeout_ms);
  for (const auto& t : topics) {
    if (!result.ok()) break;
    StatusOr<int> count = PartitionCountOf(rk, t, timeout_ms);
    if (!count.ok()) {
      result = count.status();
    } else if (*count != partitions) {
      result = FailedPreconditionError("topic " + t + " has " + std::to_string(*count) + " partitions, config says " +
                                       std::to_string(partitions) + " (impressions and labels must match for the join;"
                                       " set kafka.partitions to match the cluster)");
    }
  }
  rd_kafka_destroy(rk);
  return result;
}

}  // namespace freshet::ingest
