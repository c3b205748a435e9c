// Shared start-up of `freshet` subcommands: parse flags, load the effective config
// (--config FILE), apply the overrides every daemon accepts (--kafka, --data-dir),
// validate. Errors are printed as "freshet NAME: ..." and the caller exits 2.
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
// accepted, "kafka" and "data-dir" when listed in `with_value`.
std::optional<CommandSetup> SetUpCommand(const std::string& name, const std::vector<std::string>& args,
                                         std::set<std::string> with_value, const std::set<std::string>& switches);

// Applies config.log_level to the process's logger.
void ApplyLogLevel(const FreshetConfig& config);

}  // namespace freshet::ops
