// Shared start-up of `freshet` subcommands: parse flags, load the effective config
// (--config FILE), apply the overrides every daemon accepts (--kafka, --data-dir) and
// `freshet run`'s --replay, validate. Errors are printed as "freshet NAME: ..." and the caller exits 2.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ops/flags.h"
#include "schemas/config.pb.h"

namespace freshet::ops {

struct CommandSetup {
  Flags flags;
  FreshetConfig config;  // effective and validated
};

// `with_value` and `switches` are the command's own flags; "config" is always
// accepted, "kafka", "data-dir" and "replay" when listed in `with_value`. --replay
// sets replay.dataset before the defaults are applied, as the field in the file would.
std::optional<CommandSetup> SetUpCommand(const std::string& name, const std::vector<std::string>& args,
                                         std::set<std::string> with_value, const std::set<std::string>& switches);

// Where the shared data sets live (kuairand-pure/, census-income-kdd/):
// $FRESHET_DATA_DIR when set, else ../shared/data beside the source tree.
std::string DataDir();

// Applies config.log_level to the process's logger.
void ApplyLogLevel(const FreshetConfig& config);

// Start-up shared by the daemons (`freshet ingest`, `freshet learn`): SetUpCommand
// with --kafka, --data-dir and --admin-port (which overrides the admin port field
// that `port` points at), a Kafka cluster required, the log level applied and the
// effective config logged once. Returns nullopt after printing why (exit 2).
std::optional<FreshetConfig> SetUpDaemon(const std::string& name, const std::vector<std::string>& args,
                                         int32_t (AdminConfig::*port)() const,
                                         void (AdminConfig::*set_port)(int32_t));

}  // namespace freshet::ops
