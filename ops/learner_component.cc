// LearnerComponent; see learner_component.h.
#include "ops/learner_component.h"

#include "ops/config.h"
#include "ops/kafka_sample_source.h"

namespace freshet::ops {

StatusOr<std::unique_ptr<LearnerComponent>> LearnerComponent::Start(Options options) {
  std::unique_ptr<LearnerComponent> c(new LearnerComponent());
  const FreshetConfig& config = options.config;
  store::KvStore::Options sopt;
  sopt.path = options.store_path;
  learner::OnlineLearner::ConfigureStore(config, &sopt);
  sopt.sync_writes = config.store().sync_writes();
  ASSIGN_OR_RETURN(c->store_, store::KvStore::Open(sopt));

  learner::OnlineLearner::Options lopt;
  lopt.config = config;
  lopt.source = NewKafkaSampleSource(config, options.bootstrap, "freshet-learner");
  lopt.store = c->store_.get();
  lopt.metrics = &c->metrics_;
  ASSIGN_OR_RETURN(c->learner_, learner::OnlineLearner::Create(std::move(lopt)));

  AdminServer::Options aopt;
  aopt.component = options.component;
  aopt.bind_address = config.admin().bind_address();
  aopt.port = config.admin().learner_port();
  c->admin_ = std::make_unique<AdminServer>(aopt, &c->metrics_);
  learner::OnlineLearner* l = c->learner_.get();
  store::KvStore* db = c->store_.get();
  c->admin_->AddReadinessCheck("store", [db] { return db->health(); });
  c->admin_->AddReadinessCheck("learner", [l] { return l->Ready(); });
  c->admin_->SetStatusProvider([l] { return l->StatusJson(); });
  c->admin_->SetConfigText(ConfigToText(config));
  Dashboard::Options dopt;
  dopt.sources.push_back(LocalSource("learner", &c->metrics_));
  for (DashboardSource& peer : options.dashboard_peers ? *options.dashboard_peers : PeersFromConfig(config))
    dopt.sources.push_back(std::move(peer));
  c->dashboard_ = std::make_unique<Dashboard>(std::move(dopt));
  c->dashboard_->Register(c->admin_.get());
  if (options.configure_admin) options.configure_admin(c->admin_.get(), &c->metrics_);
  if (Status s = c->admin_->Start(); !s.ok()) return s.Annotate("learner (set admin.learner_port or --admin-port)");
  if (Status s = c->learner_->Start(); !s.ok()) {
    c->admin_->Stop();
    return s;
  }
  c->dashboard_->Start();
  return c;
}

std::vector<DashboardSource> LearnerComponent::PeersFromConfig(const FreshetConfig& config) {
  // A daemon bound to every interface is still reachable on loopback.
  std::string host = config.admin().bind_address();
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  std::vector<DashboardSource> peers;
  if (config.admin().ingest_port() != 0)
    peers.push_back(HttpSource("ingest", host + ":" + std::to_string(config.admin().ingest_port())));
  if (config.admin().serving_base_port() != 0)
    for (int i = 0; i < config.serving().replicas(); ++i)
      peers.push_back(HttpSource("serving-" + std::to_string(i),
                                 host + ":" + std::to_string(config.admin().serving_base_port() + i)));
  return peers;
}

LearnerComponent::~LearnerComponent() {
  Status s = Stop();
  (void)s;  // reported by whoever called Stop() first
}

Status LearnerComponent::Stop() {
  if (stopped_) return result_;
  stopped_ = true;
  // Members are null when Start failed part-way (this runs from the destructor then).
  if (dashboard_) dashboard_->Stop();
  if (learner_) result_ = learner_->Stop();
  if (admin_) admin_->Stop();
  return result_;
}

}  // namespace freshet::ops
