// Flags for `freshet` subcommands: `--name value` or `--name=value`, and bare
// `--switch`. Unknown flags are errors that list the known ones.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace freshet::ops {

class Flags {
 public:
  // `with_value`: flags that take a value; `switches`: flags that do not.
  static StatusOr<Flags> Parse(const std::vector<std::string>& args, const std::set<std::string>& with_value,
                               const std::set<std::string>& switches);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  // INVALID_ARGUMENT naming the flag when the value is not an integer in range.
  StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback, int64_t min, int64_t max) const;
  StatusOr<double> GetDouble(const std::string& name, double fallback, double min, double max) const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace freshet::ops
