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

// Replaces the model's input slots with the KuaiRand replay's feature layout (34
// sparse slots 8 wide, 5 one-value dense slots; ingest/kuairand_replay.h). The
// defaults use it when replay.dataset is "kuairand" and the config names no slots.
void SetKuaiRandSlots(ModelConfig* model);

// The config with every default filled in.
FreshetConfig DefaultConfig();

// Checks ranges and cross-field rules. The error names the field by its full path
// and shows the bad value, e.g. `kafka.partitions = 0: must be >= 1`.
Status Validate(const FreshetConfig& config);

// Text format of `config`, for /config and `freshet config --print`.
std::string ConfigToText(const FreshetConfig& config);

// Load + ApplyDefaults + Validate; an empty path means defaults only.
StatusOr<FreshetConfig> LoadEffectiveConfig(const std::string& path);

// Index of the task named `name`, or -1.
int TaskIndex(const FreshetConfig& config, const std::string& name);

}  // namespace freshet::ops
