// Loading, defaulting and validating FreshetConfig. Called once by each `freshet`
// subcommand's main; the result is passed down, nothing deeper reads files or the
// environment.
#pragma once

#include <string>

#include "common/status.h"
#include "schemas/config.pb.h"

namespace freshet::ops {

// Parses protobuf text format from `path`. Errors name the file, line and column.
StatusOr<FreshetConfig> LoadConfigFile(const std::string& path);
StatusOr<FreshetConfig> ParseConfigText(const std::string& text, const std::string& source = "<text>");

// Fills every unset field with its schema default (recursively) and applies the
// defaults that proto2 cannot express: the KuaiRand task list and the simulator's
// per-kind label delays when those lists are empty.
void ApplyDefaults(FreshetConfig* config);

// The config with every default filled in.
FreshetConfig DefaultConfig();

// Checks ranges and cross-field rules. The error names the field by its full path
// and shows the bad value, e.g. `kafka.partitions = 0: must be >= 1`.
Status Validate(const FreshetConfig& config);

// Text format of `config`, for /config and `freshet config --print`.
std::string ConfigToText(const FreshetConfig& config);

// Load + ApplyDefaults + Validate; an empty path means defaults only. Fields set in
// `overrides` replace the file's before the defaults are applied, for a flag the
// defaults depend on (`freshet run --replay kuairand` = replay.dataset: the data
// set's slot layout, as the same field in the file gives).
StatusOr<FreshetConfig> LoadEffectiveConfig(const std::string& path, const FreshetConfig& overrides = {});

// Index of the task named `name`, or -1.
int TaskIndex(const FreshetConfig& config, const std::string& name);

}  // namespace freshet::ops
