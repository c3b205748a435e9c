// LearnerComponent; see learner_component.h.
#include "ops/learner_component.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "ops/config.h"
#include "ops/kafka_sample_source.h"
#include "ops/version_diff.h"
#include "publisher/frame.h"

namespace freshet::ops {

StatusOr<std::string> ReadAdminTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read the admin token file " + path + " (admin.token_file / --token-file)");
  std::stringstream s;
  s << in.rdbuf();
  std::string token = s.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) return InvalidArgumentError("the admin token file " + path + " is empty");
  return token;
}

namespace {

StatusOr<std::unique_ptr<publisher::Publisher>> MakePublisher(const FreshetConfig& config, store::KvStore* db,
                                                              MetricsRegistry* metrics) {
  publisher::Publisher::Options p;
  p.config = config.publisher();
  p.topic = config.kafka().samples_topic();
  p.store = db;
  p.metrics = metrics;
  if (config.publisher().replicas_size() > 0) {
    if (config.publisher().hmac_key_file().empty())
      return InvalidArgumentError("publisher.hmac_key_file is empty but publisher.replicas are set: write a key with "
                                  "`head -c 32 /dev/urandom > FILE` and give the same file to the replicas");
    ASSIGN_OR_RETURN(p.hmac_key, publisher::LoadHmacKey(config.publisher().hmac_key_file()));
  }
  return publisher::Publisher::Create(std::move(p));
}

}  // namespace

StatusOr<std::unique_ptr<LearnerComponent>> LearnerComponent::Start(Options options) {
  std::unique_ptr<LearnerComponent> c(new LearnerComponent());
  const FreshetConfig& config = options.config;
  store::KvStore::Options sopt;
  sopt.path = options.store_path;
  learner::OnlineLearner::ConfigureStore(config, &sopt);
  for (const std::string& f : publisher::SnapshotStore::Families()) sopt.families.push_back(f);
  sopt.sync_writes = config.store().sync_writes();
  ASSIGN_OR_RETURN(c->store_, store::KvStore::Open(sopt));

  learner::OnlineLearner::Options lopt;
  lopt.config = config;
  lopt.source = NewKafkaSampleSource(config, options.bootstrap, "freshet-learner");
  lopt.store = c->store_.get();
  lopt.metrics = &c->metrics_;
  ASSIGN_OR_RETURN(c->learner_, learner::OnlineLearner::Create(std::move(lopt)));
  if (config.publisher().enabled()) {
    ASSIGN_OR_RETURN(c->publisher_, MakePublisher(config, c->store_.get(), &c->metrics_));
  }

  AdminServer::Options aopt;
  aopt.component = options.component;
  aopt.bind_address = config.admin().bind_address();
  aopt.port = config.admin().learner_port();
  if (!config.admin().token_file().empty()) {
    ASSIGN_OR_RETURN(aopt.admin_token, ReadAdminTokenFile(config.admin().token_file()));
  }
  c->admin_ = std::make_unique<AdminServer>(aopt, &c->metrics_);
  learner::OnlineLearner* l = c->learner_.get();
  publisher::Publisher* pub = c->publisher_.get();
  store::KvStore* db = c->store_.get();
  c->admin_->AddReadinessCheck("store", [db] { return db->health(); });
  c->admin_->AddReadinessCheck("learner", [l] { return l->Ready(); });
  LearnerComponent* self = c.get();
  c->admin_->SetStatusProvider([self] { return self->StatusJson(); });
  if (pub != nullptr) {
    c->admin_->AddReadinessCheck("publisher", [pub] { return pub->Ready(); });
    pub->RegisterAdmin(c->admin_.get());
    RegisterVersionDiff(c->admin_.get(), &pub->snapshots());  // GET /v1/diff, `freshet ops diff`
    RETURN_IF_ERROR(pub->Attach(l->loop()));
  }
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

std::string LearnerComponent::StatusJson() const {
  std::string json = learner_->StatusJson();
  if (publisher_ && !json.empty() && json.back() == '}')
    json.insert(json.size() - 1, ",\"publisher\":" + publisher_->StatusJson());
  return json;
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
  if (publisher_) publisher_->Stop();
  if (admin_) admin_->Stop();
  return result_;
}

}  // namespace freshet::ops
