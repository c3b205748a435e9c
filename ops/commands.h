// Entry points of the `freshet` subcommands. Each takes the arguments after the
// subcommand's name and returns the process exit code: 0 success, 1 runtime failure,
// 2 usage or config error.
#pragma once

#include <string>
#include <vector>

namespace freshet::ops {

int RunCommand(const std::vector<std::string>& args);     // the whole pipeline
int KafkaCommand(const std::vector<std::string>& args);   // embedded Kafka as a process
int ConfigCommand(const std::vector<std::string>& args);  // print / validate config
int IngestCommand(const std::vector<std::string>& args);  // the ingest daemon
int LearnCommand(const std::vector<std::string>& args);   // the online learner daemon
int ReplayCommand(const std::vector<std::string>& args);  // replay a real log into Kafka
// `freshet ops status`: every daemon's health, version, lag, freshness (ops_status.cc).
// `args` are the arguments after "status".
int OpsStatusCommand(const std::vector<std::string>& args);
int EvalCommand(const std::vector<std::string>& args);    // train + evaluate offline / prequential
int OpsCommand(const std::vector<std::string>& args);     // versions, rollback, pin, unpin
int ServeCommand(const std::vector<std::string>& args);   // one serving replica

}  // namespace freshet::ops
