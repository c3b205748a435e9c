// Flag parsing for `freshet` subcommands; see flags.h.
#include "ops/flags.h"

#include <cstdlib>

namespace freshet::ops {

StatusOr<Flags> Flags::Parse(const std::vector<std::string>& args, const std::set<std::string>& with_value,
                             const std::set<std::string>& switches) {
  Flags flags;
  auto known = [&] {
    std::string out;
    for (const auto& f : with_value) out += " --" + f + " VALUE";
    for (const auto& f : switches) out += " --" + f;
    return out;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) return InvalidArgumentError("unexpected argument '" + arg + "'; flags:" + known());
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    if (switches.count(name)) {
      if (has_inline) return InvalidArgumentError("--" + name + " takes no value");
      flags.values_[name] = "true";
    } else if (with_value.count(name)) {
      if (!has_inline) {
        if (i + 1 >= args.size()) return InvalidArgumentError("--" + name + " needs a value");
        value = args[++i];
      }
      flags.values_[name] = value;
    } else {
      return InvalidArgumentError("unknown flag --" + name + "; flags:" + known());
    }
  }
  return flags;
}

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

StatusOr<int64_t> Flags::GetInt(const std::string& name, int64_t fallback, int64_t min, int64_t max) const {
  if (!Has(name)) return fallback;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < min || x > max) {
    return InvalidArgumentError("--" + name + " = " + v + ": must be an integer in [" + std::to_string(min) + ", " +
                                std::to_string(max) + "]");
  }
  return static_cast<int64_t>(x);
}

StatusOr<double> Flags::GetDouble(const std::string& name, double fallback, double min, double max) const {
  if (!Has(name)) return fallback;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(x >= min && x <= max)) {
    return InvalidArgumentError("--" + name + " = " + v + ": must be a number in [" + std::to_string(min) + ", " +
                                std::to_string(max) + "]");
  }
  return x;
}

}  // namespace freshet::ops
