// `freshet ops`: the operator's CLI for the learner's publisher, over its admin HTTP
// (publisher/publisher.h, /v1/*):
//
//   freshet ops versions              versions in the snapshot store with manifests
//   freshet ops diff V1 V2            what changed from V1 to V2: tensors (L2 norms),
//                                     embedding rows per slot, metrics (ops/version_diff.h)
//   freshet ops rollback --to V       push full V to every replica and pin it
//   freshet ops pin                   stop publishing; replicas stay where they are
//   freshet ops unpin                 resume: full push of the newest trained model
//   freshet ops snapshot              cut a FULL snapshot at the learner's next tick
//
// Flags: --learner HOST:PORT (default 127.0.0.1:admin.learner_port), --token-file F
// (default admin.token_file; the mutating calls need it), --json (versions as JSON),
// --config FILE. Exit codes: 0 done, 1 the learner refused or is unreachable, 2 usage.
#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "common/http_client.h"
#include "ops/command_util.h"
#include "ops/commands.h"
#include "ops/learner_component.h"
#include "ops/metrics_scrape.h"

namespace freshet::ops {
namespace {

constexpr const char* kOpsUsage =
    "usage: freshet ops status|versions|diff V1 V2|rollback --to V|pin|unpin|snapshot [--learner HOST:PORT] [--token-file F] [--json]\n"
    "  status flags: --ingest HOST:PORT --learner HOST:PORT --serving HOST:PORT,... --window S\n";

int Fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "freshet ops: %s\n", message.c_str());
  return code;
}

}  // namespace

int OpsCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kOpsUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string action = args[0];
  if (action != "versions" && action != "diff" && action != "rollback" && action != "pin" && action != "unpin" &&
      action != "snapshot")
    return Fail("unknown action '" + action + "'\n" + kOpsUsage, 2);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  std::vector<uint64_t> diff_versions;  // diff's two positional versions ("7" or "v7")
  if (action == "diff") {
    while (!rest.empty() && rest.front().rfind("--", 0) != 0 && diff_versions.size() < 2) {
      const std::string v = rest.front()[0] == 'v' ? rest.front().substr(1) : rest.front();
      char* end = nullptr;
      const unsigned long long n = v.empty() ? 0 : std::strtoull(v.c_str(), &end, 10);
      if (n == 0 || *end != '\0')
        return Fail("diff takes two version numbers (see `freshet ops versions`), got '" + rest.front() + "'", 2);
      diff_versions.push_back(n);
      rest.erase(rest.begin());
    }
    if (diff_versions.size() != 2) return Fail("diff needs two versions: freshet ops diff V1 V2", 2);
  }
  auto setup = SetUpCommand("ops", rest, {"learner", "token-file", "to"}, {"json"});
  if (!setup) return 2;
  const FreshetConfig& config = setup->config;
  const Flags& flags = setup->flags;

  std::string host = "127.0.0.1";
  int port = config.admin().learner_port();
  if (flags.Has("learner")) {
    auto hp = ParseHostPort(flags.Get("learner"), "--learner (the learner's admin address)");
    if (!hp.ok()) return Fail(hp.status().message(), 2);
    std::tie(host, port) = *hp;
  }

  std::string method = "POST", path = "/v1/" + action;
  if (action == "versions" || action == "diff") {
    method = "GET";
    if (action == "diff")
      path += "?from=" + std::to_string(diff_versions[0]) + "&to=" + std::to_string(diff_versions[1]);
    if (!flags.Has("json")) path += std::string(action == "diff" ? "&" : "?") + "format=text";
  } else if (action == "rollback") {
    auto to = flags.GetInt("to", -1, 1, INT64_MAX);
    if (!to.ok() || !flags.Has("to")) return Fail("rollback needs --to VERSION (see `freshet ops versions`)", 2);
    path += "?to=" + std::to_string(*to);
  }
  std::map<std::string, std::string> headers;
  if (method == "POST") {
    const std::string token_file = flags.Get("token-file", config.admin().token_file());
    if (token_file.empty())
      return Fail(action + " changes what serving serves and needs the admin token: pass --token-file F (the file "
                  "named by the learner's admin.token_file)", 2);
    auto token = ReadAdminTokenFile(token_file);
    if (!token.ok()) return Fail(token.status().message(), 2);
    headers["Authorization"] = "Bearer " + *token;
  }
  // Rollback waits for the replicas' acks on the learner side.
  auto r = HttpCall(method, host, port, path, "", headers, 30000);
  if (!r.ok())
    return Fail("the learner's admin server at " + host + ":" + std::to_string(port) + " is unreachable (" +
                r.status().message() + "); is `freshet learn` or `freshet run` running? pass --learner HOST:PORT");
  if (r->status == 404 && r->body.rfind("no such admin path", 0) == 0)
    return Fail("the daemon at " + host + ":" + std::to_string(port) + " has no publisher (" + path + ": 404)");
  std::fputs(r->body.c_str(), r->status == 200 ? stdout : stderr);
  if (!r->body.empty() && r->body.back() != '\n') std::fputc('\n', r->status == 200 ? stdout : stderr);
  return r->status == 200 ? 0 : 1;
}

}  // namespace freshet::ops
