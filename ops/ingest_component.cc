// IngestComponent; see ingest_component.h.
#include "ops/ingest_component.h"

#include "common/logging.h"
#include "ops/config.h"

namespace freshet::ops {

StatusOr<std::unique_ptr<IngestComponent>> IngestComponent::Start(const FreshetConfig& config,
                                                                 const std::string& bootstrap,
                                                                 const std::string& store_path) {
  std::unique_ptr<IngestComponent> c(new IngestComponent());
  c->store_path_ = store_path;
  store::KvStore::Options sopt;
  sopt.path = store_path;
  sopt.families = ingest::Joiner::StoreFamilies();
  sopt.sync_writes = config.store().sync_writes();
  ASSIGN_OR_RETURN(c->store_, store::KvStore::Open(sopt));

  ingest::Joiner::Options jopt;
  jopt.config = config;
  jopt.bootstrap_servers = bootstrap;
  jopt.store = c->store_.get();
  jopt.metrics = &c->metrics_;
  ASSIGN_OR_RETURN(c->joiner_, ingest::Joiner::Create(jopt));

  AdminServer::Options aopt;
  aopt.component = "freshet-ingest";
  aopt.bind_address = config.admin().bind_address();
  aopt.port = config.admin().ingest_port();
  c->admin_ = std::make_unique<AdminServer>(aopt, &c->metrics_);
  ingest::Joiner* j = c->joiner_.get();
  store::KvStore* db = c->store_.get();
  c->admin_->AddReadinessCheck("store", [db] { return db->health(); });
  c->admin_->AddReadinessCheck("kafka", [j] { return j->Ready(); });
  c->admin_->SetStatusProvider([j] { return j->StatusJson(); });
  c->admin_->SetConfigText(ConfigToText(config));
  if (Status s = c->admin_->Start(); !s.ok()) return s.Annotate("ingest (set admin.ingest_port or --admin-port)");

  c->running_.store(true);
  IngestComponent* raw = c.get();
  c->thread_ = std::thread([raw] {
    raw->result_ = raw->joiner_->Run(&raw->stop_);
    if (!raw->result_.ok()) {
      LOG_ERROR("ingest_stopped_on_error").Kv("status", raw->result_.ToString())
          .Kv("action", "restart: the joiner resumes from its last checkpoint");
    }
    raw->running_.store(false);
  });
  return c;
}

IngestComponent::~IngestComponent() {
  Status s = Stop();
  (void)s;  // reported by whoever called Stop() first
}

Status IngestComponent::Stop() {
  if (stopped_) return result_;
  stopped_ = true;
  stop_.Request("stop");
  if (thread_.joinable()) thread_.join();
  if (admin_) admin_->Stop();
  return result_;
}

}  // namespace freshet::ops
