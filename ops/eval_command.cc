// `freshet eval`: trains and evaluates model variants on a data set without Kafka
// (learner/eval/eval_runner.h), over several seeds, and prints the per-task metrics
// table and expert diagnostics (ops/eval_report.h); --json FILE writes everything.
// The model code and config are the daemons': the LearnerConfig of --model-config
// (a FreshetConfig file, as every command's --config), with --family overriding its
// family and the data set's slot layout used when the config names no slots.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "ingest/census_data.h"
#include "ingest/kuairand_data.h"
#include "ingest/synthetic_mtl.h"
#include "ops/command_util.h"
#include "ops/commands.h"
#include "ops/config.h"
#include "ops/eval_report.h"
#include "ops/simulator_data.h"

namespace freshet::ops {
namespace {

constexpr const char* kEvalUsage =
    "usage: freshet eval --data synthetic|census|kuairand|simulator [flags]\n"
    "  --mode offline|prequential   offline (default): --passes over the train part, then\n"
    "                               the test part; prequential: one pass, test-then-train\n"
    "  --model-config FILE          FreshetConfig text (its learner section); default built-in\n"
    "  --family LIST                comma-separated: shared_bottom single_task mmoe omoe cgc ple\n"
    "                               home home_no_norm_swish home_no_hierarchy\n"
    "                               home_no_feature_gate home_no_self_gate (default: the config's)\n"
    "  --seeds N --seed S           N runs with learner seeds S, S+1, ... (default 1 run, S=1)\n"
    "  --passes N                   offline passes (default 1)\n"
    "  --json FILE                  write every run (metrics, diagnostics, loss curves)\n"
    "  --data-path FILE             data file (default: under $FRESHET_DATA_DIR, else\n"
    "                               ../shared/data beside the source tree)\n"
    "  --window N                   metrics over the newest N samples per task (default all)\n"
    "  synthetic: --correlation P --rows N --test-rows N --input-dim D\n"
    "  census:    --census-group 1|2 --split-seed S (80/20 split of part-a)\n"
    "  kuairand:  --users-modulo K (keep users with id % K == 0)\n"
    "  simulator: --rows N --test-rows N  the traffic `freshet run` simulates with the\n"
    "             config's simulator section (time split; labels as the wait policy sees them)\n"
    "  kuairand, simulator:\n"
    "             --twin off|on|both  TWIN long-term behaviour module over the item slot\n"
    "                               (histories from the log in time order; default off, or\n"
    "                               on when the config file enables learner.model.twin)\n";

// Applies a variant name to the learner config; false for an unknown name.
bool ApplyVariant(const std::string& name, ModelConfig* m) {
  const std::map<std::string, ModelFamily> families = {
      {"shared_bottom", FAMILY_SHARED_BOTTOM}, {"single_task", FAMILY_SINGLE_TASK}, {"mmoe", FAMILY_MMOE},
      {"omoe", FAMILY_OMOE}, {"cgc", FAMILY_CGC}, {"ple", FAMILY_PLE}, {"home", FAMILY_HOME}};
  if (auto it = families.find(name); it != families.end()) {
    m->set_family(it->second);
    return true;
  }
  const std::map<std::string, std::function<void(HomeConfig*)>> ablations = {
      {"home_no_norm_swish", [](HomeConfig* h) { h->set_expert_norm_swish(false); }},
      {"home_no_hierarchy", [](HomeConfig* h) { h->set_hierarchy(false); }},
      {"home_no_feature_gate", [](HomeConfig* h) { h->set_feature_gate(false); }},
      {"home_no_self_gate", [](HomeConfig* h) { h->set_self_gate(false); }}};
  auto it = ablations.find(name);
  if (it == ablations.end()) return false;
  m->set_family(FAMILY_HOME);
  it->second(m->mutable_home());
  return true;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Draws "[label] [#####-----]  52%" on stderr, redrawn when the percentage moves (on
// a terminal) or every 10 % (into a file).
class ProgressBar {
 public:
  ProgressBar() : tty_(isatty(STDERR_FILENO) != 0) {}
  void Set(const std::string& label, int64_t done, int64_t total) {
    const int pct = total > 0 ? static_cast<int>(100 * done / total) : 100;
    if (label == label_ && (pct == pct_ || (!tty_ && pct / 10 == pct_ / 10))) return;
    label_ = label;
    pct_ = pct;
    std::string bar(30, '-');
    for (int i = 0; i < pct * 30 / 100; ++i) bar[i] = '#';
    std::fprintf(stderr, "%s[%s] [%s] %3d%%%s", tty_ ? "\r" : "", label.c_str(), bar.c_str(), pct, tty_ ? "" : "\n");
    std::fflush(stderr);
  }
  void Done() {
    if (tty_) std::fputs("\n", stderr);
  }

 private:
  bool tty_;
  std::string label_;
  int pct_ = -1;
};

struct DataChoice {
  std::string kind, path;
  ingest::SyntheticMtlOptions synthetic;
  ingest::CensusOptions census;
  ingest::KuaiRandDataOptions kuairand;
  SimulatedDataOptions simulator;
};

StatusOr<ingest::EvalData> LoadData(const DataChoice& d, const FreshetConfig& config, uint64_t seed) {
  if (d.kind == "synthetic") {
    ingest::SyntheticMtlOptions o = d.synthetic;
    o.seed = seed;  // fresh data per run, as the paper's repeated runs
    return ingest::MakeSyntheticMtl(o);
  }
  if (d.kind == "census") {
    ingest::CensusOptions o = d.census;
    o.path = d.path.empty() ? DataDir() + "/census-income-kdd/census-income.part-a.gz" : d.path;
    return ingest::LoadCensus(o);
  }
  if (d.kind == "simulator") return SimulatedEvalData(config, d.simulator);
  ingest::KuaiRandDataOptions o = d.kuairand;
  o.log_path = d.path.empty() ? DataDir() + "/kuairand-pure/log_standard_4_25_to_4_30_pure.csv.gz" : d.path;
  return ingest::LoadKuaiRand(o, config);
}

int Fail(const Status& s) {
  std::fprintf(stderr, "freshet eval: %s\n", s.message().c_str());
  return 2;
}

}  // namespace

int EvalCommand(const std::vector<std::string>& raw_args) {
  for (const std::string& a : raw_args)
    if (a == "--help" || a == "-h") return std::fputs(kEvalUsage, stdout), 0;
  std::vector<std::string> args;
  for (const std::string& a : raw_args) args.push_back(a == "--model-config" ? "--config" : a);
  auto setup = SetUpCommand("eval", args,
                            {"data", "mode", "family", "seeds", "seed", "passes", "json", "data-path", "window",
                             "correlation", "rows", "test-rows", "input-dim", "census-group", "split-seed",
                             "users-modulo", "twin"},
                            {});
  if (!setup) return std::fputs(kEvalUsage, stderr), 2;
  const Flags& f = setup->flags;
  const FreshetConfig& config = setup->config;
  DataChoice data;
  data.kind = f.Get("data");
  data.path = f.Get("data-path");
  if (data.kind != "synthetic" && data.kind != "census" && data.kind != "kuairand" && data.kind != "simulator")
    return std::fprintf(stderr, "freshet eval: --data must be synthetic, census, kuairand or simulator\n%s", kEvalUsage),
           2;
  const std::string mode = f.Get("mode", "offline");
  if (mode != "offline" && mode != "prequential")
    return std::fprintf(stderr, "freshet eval: --mode must be offline or prequential\n"), 2;
  auto seeds = f.GetInt("seeds", 1, 1, 10000);
  auto seed = f.GetInt("seed", 1, 1, INT64_MAX / 2);
  auto passes = f.GetInt("passes", 1, 1, 1000);
  auto window = f.GetInt("window", 0, 0, INT64_MAX / 2);
  auto corr = f.GetDouble("correlation", 0.5, -1, 1);
  auto rows = f.GetInt("rows", 20000, 1, 100000000);
  auto test_rows = f.GetInt("test-rows", 5000, 0, 100000000);
  auto dim = f.GetInt("input-dim", 100, 2, 100000);
  auto group = f.GetInt("census-group", 1, 1, 2);
  auto split_seed = f.GetInt("split-seed", 1, 0, INT64_MAX / 2);
  auto modulo = f.GetInt("users-modulo", 1, 1, 1000000);
  for (const Status& s : {seeds.status(), seed.status(), passes.status(), window.status(), corr.status(),
                          rows.status(), test_rows.status(), dim.status(), group.status(), split_seed.status(),
                          modulo.status()})
    if (!s.ok()) return Fail(s);
  data.synthetic.correlation = *corr;
  data.synthetic.train_rows = *rows;
  data.synthetic.test_rows = *test_rows;
  data.synthetic.input_dim = static_cast<int>(*dim);
  data.census.group = static_cast<int>(*group);
  data.census.seed = static_cast<uint64_t>(*split_seed);
  data.kuairand.keep_user_modulo = static_cast<int>(*modulo);
  data.simulator.train_rows = *rows;
  data.simulator.test_rows = *test_rows;

  std::vector<std::string> variants = SplitList(f.Get("family"));
  if (variants.empty()) variants.push_back("");  // the config's own family
  // The file as written, before the defaults: ApplyDefaults gives a slot-less config the
  // simulator's slots and TWIN, so what the file itself says decides the data set's
  // layout and the --twin default. (SetUpCommand has already parsed it.)
  FreshetConfig file;
  if (f.Has("config")) {
    if (auto raw = LoadConfigFile(f.Get("config")); raw.ok()) file = std::move(raw).value();
  }
  // TWIN runs of each variant: false = off, true = on.
  std::vector<bool> twin_runs;
  {
    const std::string twin = f.Get("twin", file.learner().model().twin().enabled() ? "on" : "off");
    if (twin == "off" || twin == "both") twin_runs.push_back(false);
    if (twin == "on" || twin == "both") twin_runs.push_back(true);
    if (twin_runs.empty())
      return std::fprintf(stderr, "freshet eval: --twin must be off, on or both\n%s", kEvalUsage), 2;
    if (twin != "off" && data.kind != "kuairand" && data.kind != "simulator")
      return std::fprintf(stderr, "freshet eval: --twin needs --data kuairand or simulator (a data set with item ids and "
                                  "event times)\n%s", kEvalUsage), 2;
  }
  for (const std::string& v : variants) {
    ModelConfig probe;
    if (!v.empty() && !ApplyVariant(v, &probe))
      return std::fprintf(stderr, "freshet eval: --family: unknown variant '%s'\n%s", v.c_str(), kEvalUsage), 2;
  }

  StatusOr<ingest::EvalData> loaded = LoadData(data, config, static_cast<uint64_t>(*seed));
  if (!loaded.ok()) return Fail(loaded.status());
  EvalReportHeader header;
  for (const std::string& a : raw_args) header.command += (header.command.empty() ? "freshet eval " : " ") + a;
  header.data = loaded->description;
  header.mode = mode;
  header.passes = static_cast<int>(*passes);
  header.tasks = loaded->tasks;
  std::fprintf(stderr, "freshet eval: %s\n", header.data.c_str());

  learner::EvalOptions options;
  options.mode = mode == "offline" ? learner::EvalMode::kOffline : learner::EvalMode::kPrequential;
  options.passes = static_cast<int>(*passes);
  options.window = static_cast<size_t>(*window);
  // The data set's layout is used unless the file names slots.
  const bool config_names_slots =
      file.learner().model().sparse_slots_size() + file.learner().model().dense_slots_size() > 0;
  ProgressBar bar;
  std::vector<VariantRuns> results;
  const size_t runs_total = variants.size() * twin_runs.size();
  for (size_t vi = 0; vi < runs_total; ++vi) {
    const std::string& variant = variants[vi / twin_runs.size()];
    const bool twin_on = twin_runs[vi % twin_runs.size()];
    VariantRuns vr;
    LearnerConfig learner = config.learner();
    if (!variant.empty()) ApplyVariant(variant, learner.mutable_model());
    vr.variant = (variant.empty() ? ModelFamily_Name(learner.model().family()) : variant) + (twin_on ? "+twin" : "");
    ModelConfig* m = learner.mutable_model();
    if (!config_names_slots) {
      *m->mutable_sparse_slots() = loaded->input.sparse_slots();
      *m->mutable_dense_slots() = loaded->input.dense_slots();
      m->mutable_twin()->set_item_slot(1);  // KuaiRand's video slot (kuairand_replay.h); the simulator's item
    }
    m->mutable_twin()->set_enabled(twin_on);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < *seeds; ++i) {
      const uint64_t s = static_cast<uint64_t>(*seed + i);
      if (data.kind == "synthetic" && i > 0) {
        loaded = LoadData(data, config, s);
        if (!loaded.ok()) return Fail(loaded.status());
      }
      learner.set_seed(s);
      options.shuffle_seed = loaded->time_ordered ? 0 : s;
      const std::string label = vr.variant + " " + std::to_string(vi + 1) + "/" + std::to_string(runs_total) +
                                " seed " + std::to_string(i + 1) + "/" + std::to_string(*seeds);
      options.progress = [&](int64_t done, int64_t total) { bar.Set(label, done, total); };
      std::vector<Sample> stream;
      const std::vector<Sample>* train = &loaded->train;
      if (options.mode == learner::EvalMode::kPrequential && !loaded->test.empty()) {
        stream = loaded->train;  // one pass over everything, in order
        stream.insert(stream.end(), loaded->test.begin(), loaded->test.end());
        train = &stream;
      }
      StatusOr<learner::EvalResult> r = learner::RunEval(learner, loaded->tasks, *train, loaded->test, options);
      if (!r.ok()) return bar.Done(), Fail(r.status());
      vr.seeds.push_back(s);
      vr.runs.push_back(std::move(r).value());
    }
    vr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    results.push_back(std::move(vr));
  }
  bar.Done();
  std::fputs(FormatMetricsTable(header, results).c_str(), stdout);
  std::fputs(FormatDiagnostics(header, results).c_str(), stdout);
  if (f.Has("json")) {
    std::ofstream out(f.Get("json"));
    out << ReportJson(header, results) << "\n";
    if (!out) return std::fprintf(stderr, "freshet eval: cannot write --json %s\n", f.Get("json").c_str()), 1;
  }
  return 0;
}

}  // namespace freshet::ops
