// ServingNode: a serving replica plus its admin HTTP server and metrics registry.
#include "publisher/serving_node.h"

#include <google/protobuf/text_format.h>

namespace freshet::publisher {
namespace {

int PortFor(int base, int replica, const std::optional<int>& override_port) {
  if (override_port) return *override_port;
  return base == 0 ? 0 : base + replica;
}

}  // namespace

StatusOr<std::unique_ptr<ServingNode>> ServingNode::Start(const FreshetConfig& config, int replica,
                                                          std::string hmac_key, Ports ports, Clock* clock) {
  const int admin_port = PortFor(config.admin().serving_base_port(), replica, ports.admin);
  const int push_port = PortFor(config.serving().push_base_port(), replica, ports.push);
  if (admin_port > 65535 || push_port > 65535)
    return InvalidArgumentError("replica " + std::to_string(replica) + " would use port " +
                                std::to_string(std::max(admin_port, push_port)) +
                                ": lower admin.serving_base_port / serving.push_base_port");
  std::unique_ptr<ServingNode> node(new ServingNode());
  ServingReplica::Options o;
  o.learner = config.learner();
  o.tasks.assign(config.tasks().begin(), config.tasks().end());
  o.hmac_key = std::move(hmac_key);
  o.replica = replica;
  o.push_bind_address = config.serving().push_bind_address();
  o.push_port = push_port;
  o.max_frame_bytes = static_cast<uint64_t>(config.serving().max_frame_bytes());
  o.max_score_items = config.serving().max_score_items();
  o.behaviour_cache_dir = config.serving().behaviour_cache_dir();
  ASSIGN_OR_RETURN(node->replica_, ServingReplica::Start(std::move(o), &node->metrics_, clock));

  AdminServer::Options aopt;
  aopt.component = "serving-" + std::to_string(replica);
  aopt.bind_address = config.admin().bind_address();
  aopt.port = admin_port;
  node->admin_ = std::make_unique<AdminServer>(aopt, &node->metrics_);
  node->replica_->RegisterAdmin(node->admin_.get());
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  node->admin_->SetConfigText(text);
  if (Status s = node->admin_->Start(); !s.ok())
    return s.Annotate("serving replica " + std::to_string(replica) + " (set admin.serving_base_port or --admin-port)");
  return node;
}

ServingNode::~ServingNode() { Stop(); }

void ServingNode::Stop() {
  if (admin_) admin_->Stop();
  if (replica_) replica_->Stop();
}

}  // namespace freshet::publisher
