// The `freshet` command: one binary, one subcommand per daemon or tool.
#include <cstdio>
#include <string>
#include <vector>

#include "ops/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: freshet COMMAND [flags]\n"
    "\n"
    "commands:\n"
    "  run      the whole pipeline on one machine: embedded Kafka (or --kafka HOST:PORT),\n"
    "           traffic simulator (or --replay kuairand: the KuaiRand log from\n"
    "           $FRESHET_DATA_DIR), ingest, learner, publisher, serving, dashboard; flags:\n"
    "           --config FILE --duration S --seed N --rate N --kafka HOST:PORT --replay kuairand\n"
    "  kafka    host the embedded Kafka cluster as its own process and print its bootstrap\n"
    "           servers; flags: --brokers N --partitions P --config FILE\n"
    "  config   --print-defaults | --print FILE | --validate FILE\n"
    "  ingest   the ingest daemon: joins impressions and labels into samples; flags:\n"
    "           --config FILE --kafka HOST:PORT --data-dir DIR --admin-port N\n"
    "  learn    the online learner daemon: trains continuously from samples, checkpoints\n"
    "           to RocksDB; flags: --config FILE --kafka HOST:PORT --data-dir DIR --admin-port N\n"
    "  replay   replay a real log into the impressions/labels topics in event-time order:\n"
    "           `replay kuairand --log PATH [--speed N] [--kafka HOST:PORT] [--config FILE]`\n"
    "           (--speed N: N s of event time per wall second, 0 = as fast as possible)\n"
    "  ops      operator tools: `ops status [--ingest HOST:PORT] [--learner HOST:PORT]\n"
    "           [--serving HOST:PORT,...] [--window S] [--config FILE]`: every daemon's health,\n"
    "           version, lag and freshness in one table (exit 1 when any is down);\n"
    "           `ops versions|diff V1 V2|rollback --to V|pin|unpin|snapshot [--learner HOST:PORT]\n"
    "           [--token-file F] [--json]`\n"
    "  serve    one serving replica: applies versions pushed by the publisher, scores\n"
    "           POST /v1/score; flags: --config FILE --replica I --push-port N --admin-port N\n"
    "           --hmac-key-file FILE\n"
    "  eval     train and evaluate model variants on a data set without Kafka (offline or\n"
    "           prequential): `eval --data synthetic|census|kuairand [--family mmoe,ple]`\n"
    "           [--seeds N] [--json FILE]; `freshet eval --help` lists every flag\n"
    "\n"
    "Every command accepts --config FILE (protobuf text format, see `freshet config\n"
    "--print-defaults`).\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "run") return freshet::ops::RunCommand(args);
  if (command == "kafka") return freshet::ops::KafkaCommand(args);
  if (command == "config") return freshet::ops::ConfigCommand(args);
  if (command == "ingest") return freshet::ops::IngestCommand(args);
  if (command == "learn") return freshet::ops::LearnCommand(args);
  if (command == "replay") return freshet::ops::ReplayCommand(args);
  if (command == "ops" && !args.empty() && args[0] == "status")
    return freshet::ops::OpsStatusCommand(std::vector<std::string>(args.begin() + 1, args.end()));
  if (command == "ops") return freshet::ops::OpsCommand(args);
  if (command == "serve") return freshet::ops::ServeCommand(args);
  if (command == "eval") return freshet::ops::EvalCommand(args);
  std::fprintf(stderr, "freshet: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return 2;
}
