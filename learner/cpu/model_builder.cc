// Writes the op list of each model family. Read BuildPle first (it covers five of the
// six families), then BuildHome.
#include "learner/cpu/model_builder.h"

#include <string>

#include "common/check.h"

namespace freshet::cpu {

StatusOr<std::vector<TaskSpec>> TaskSpecsFromConfig(const std::vector<TaskConfig>& tasks) {
  std::vector<TaskSpec> out;
  for (const TaskConfig& t : tasks) {
    TaskSpec s;
    s.name = t.name();
    s.kind = t.type() == TASK_REGRESSION ? TaskKind::kRegression : TaskKind::kBinary;
    s.loss_weight = t.loss_weight();
    if (t.home_group() == "watch") {
      s.watch_group = true;
    } else if (t.home_group() != "interaction") {
      return InvalidArgumentError("tasks[" + t.name() + "].home_group: \"" + t.home_group() +
                                  "\" is neither \"watch\" nor \"interaction\"");
    }
    out.push_back(s);
  }
  return out;
}

namespace {

Act ToAct(Activation a) {
  switch (a) {
    case ACT_SWISH: return Act::kSwish;
    case ACT_NONE: return Act::kNone;
    default: return Act::kRelu;
  }
}

}  // namespace

template <typename T>
class ModelBuilder {
 public:
  ModelBuilder(const LearnerConfig& config, const std::vector<TaskSpec>& tasks, MetricsRegistry* metrics)
      : config_(config), mc_(config.model()), rng_(config.seed()), model_(new Model<T>()), metrics_(metrics) {
    model_->tasks_ = tasks;
  }

  StatusOr<std::unique_ptr<Model<T>>> Build() {
    RETURN_IF_ERROR(Validate());
    BuildInput();
    const int ms = mc_.num_shared_experts(), mk = mc_.num_specific_experts();
    switch (mc_.family()) {
      case FAMILY_SHARED_BOTTOM: BuildPle(1, /*mk=*/0, /*ms=*/1); break;
      case FAMILY_SINGLE_TASK: BuildPle(1, /*mk=*/1, /*ms=*/0); break;
      case FAMILY_MMOE: BuildPle(1, /*mk=*/0, ms); break;
      case FAMILY_CGC: BuildPle(1, mk, ms); break;
      case FAMILY_PLE: BuildPle(mc_.ple_levels(), mk, ms); break;
      case FAMILY_HOME: BuildHome(); break;
      case FAMILY_OMOE: BuildOmoe(ms); break;
    }
    for (auto& op : model_->ops_) {
      op->CollectParams(&model_->params_);
      op->CollectBuffers(&model_->state_buffers_);
    }
    if (config_.threads() > 1) {
      model_->pool_ = std::make_unique<WorkerPool>(config_.threads());
      for (ExpertOp<T>* op : model_->expert_ops_) op->group().set_pool(model_->pool_.get());
    }
    BuildTwin();  // last: with TWIN off nothing above draws differently
    return std::move(model_);
  }

 private:
  Status Validate() const {
    if (model_->tasks_.empty()) return InvalidArgumentError("tasks: at least one task is required");
    if (config_.threads() < 1 || config_.threads() > 64)
      return InvalidArgumentError("learner.threads must be in [1, 64], got " + std::to_string(config_.threads()));
    if (mc_.expert_output_dim() <= 0) return InvalidArgumentError("learner.model.expert_output_dim must be > 0");
    for (int h : mc_.expert_hidden())
      if (h <= 0) return InvalidArgumentError("learner.model.expert_hidden: widths must be > 0");
    for (int h : mc_.tower_hidden())
      if (h <= 0) return InvalidArgumentError("learner.model.tower_hidden: widths must be > 0");
    if (mc_.num_shared_experts() < 0 || mc_.num_specific_experts() < 0)
      return InvalidArgumentError("learner.model: expert counts must be >= 0");
    if ((mc_.family() == FAMILY_CGC || mc_.family() == FAMILY_PLE) &&
        mc_.num_shared_experts() + mc_.num_specific_experts() == 0)
      return InvalidArgumentError("learner.model: CGC/PLE need at least one expert per task");
    if ((mc_.family() == FAMILY_MMOE || mc_.family() == FAMILY_OMOE) && mc_.num_shared_experts() < 1)
      return InvalidArgumentError("learner.model.num_shared_experts must be >= 1 for MMoE/OMoE");
    if (mc_.family() == FAMILY_PLE && mc_.ple_levels() < 1)
      return InvalidArgumentError("learner.model.ple_levels must be >= 1");
    for (const auto& s : mc_.sparse_slots())
      if (s.dim() <= 0) return InvalidArgumentError("learner.model.sparse_slots[" + std::to_string(s.slot()) + "].dim must be > 0");
    for (const auto& d : mc_.dense_slots())
      if (d.width() <= 0) return InvalidArgumentError("learner.model.dense_slots[" + std::to_string(d.slot()) + "].width must be > 0");
    if (mc_.sparse_slots_size() + mc_.dense_slots_size() == 0)
      return InvalidArgumentError("learner.model: no sparse_slots and no dense_slots");
    RETURN_IF_ERROR(ValidateTwinConfig(mc_));
    if (mc_.family() == FAMILY_HOME) {
      const HomeConfig& h = mc_.home();
      if (h.feature_gate() && h.feature_gate_rank() <= 0)
        return InvalidArgumentError("learner.model.home.feature_gate_rank must be > 0");
      if (h.global_experts_l1() < 0 || h.category_experts_l1() < 0 || h.global_experts_l2() < 0 ||
          h.category_experts_l2() < 0 || h.task_experts() < 0)
        return InvalidArgumentError("learner.model.home: expert counts must be >= 0");
      if (h.global_experts_l1() + h.category_experts_l1() == 0 ||
          h.global_experts_l2() + h.category_experts_l2() + h.task_experts() == 0)
        return InvalidArgumentError("learner.model.home: every gate needs at least one expert");
    }
    return Status::Ok();
  }

  // TWIN reads the item slot's embedding and appends its output to x (model.h).
  void BuildTwin() {
    const TwinConfig& t = mc_.twin();
    if (!t.enabled()) return;
    Model<T>& m = *model_;
    TwinSpec spec;
    spec.item_dim = m.slots_[m.twin_slot_].dim;
    spec.heads = t.heads();
    spec.key_dim = t.key_dim();
    spec.value_dim = t.value_dim();
    spec.output_dim = t.output_dim();
    spec.cross_dim = t.cross_dim();
    spec.top_k = t.top_k();
    spec.max_len = t.max_len();
    m.twin_ = std::make_unique<Twin<T>>("twin", spec, &rng_);
    m.twin_->CollectParams(&m.params_);
    m.projection_cache_ = std::make_unique<store::ProjectionCache>(
        store::ProjectionCache::Options{spec.projection_width(), t.refresh_after_versions(), t.projection_cache_items()},
        metrics_);
    m.twin_features_ = std::make_unique<typename Model<T>::TwinEmbeddings>(&m);
  }

  // x = [embedding slot 0 | … | slot S−1 | dense | twin]; buffer 0.
  void BuildInput() {
    Model<T>& m = *model_;
    EmbeddingTableOptions opt;
    int column = 0;
    for (const SparseSlotConfig& s : mc_.sparse_slots()) {
      m.slots_.push_back({s.dim(), s.pooling() == POOL_MEAN, column});
      opt.slot_dims.push_back(s.dim());
      column += s.dim();
    }
    for (const DenseSlotConfig& d : mc_.dense_slots()) m.dense_dim_ += d.width();
    if (mc_.twin().enabled()) {
      m.twin_slot_ = TwinSlotIndex(mc_);
      m.twin_width_ = mc_.twin().output_dim();
    }
    m.input_dim_ = column + m.dense_dim_ + m.twin_width_;
    const EmbeddingTableConfig& e = config_.embedding();
    opt.min_count = e.min_count();
    opt.cms_width = e.cms_width();
    opt.cms_depth = e.cms_depth();
    opt.ttl_ms = e.ttl_ms();
    opt.max_bytes = e.max_bytes();
    opt.evict_oldest_at_budget = e.budget_policy() == BUDGET_EVICT_OLDEST;
    opt.seed = config_.seed();
    const bool ftrl = config_.sparse_optimizer().type() == SPARSE_FTRL;
    opt.state_width = ftrl ? 2 : 1;  // FTRL keeps (z, n); Adagrad its accumulator
    opt.state_init = ftrl ? 0.0 : config_.sparse_optimizer().initial_accumulator();
    opt.init_std = ftrl ? 0.0 : e.init_std();  // FTRL weights are a function of (z, n): start at 0
    if (opt.slot_dims.empty()) opt.cms_width = 1;  // dense-only model: no sketch to speak of
    m.table_ = std::make_unique<EmbeddingTable<T>>(opt);
    Buffer(m.input_dim_);
  }

  int Buffer(int width) {
    model_->buffers_.value.emplace_back();
    model_->buffers_.grad.emplace_back();
    model_->buffers_.width.push_back(width);
    return static_cast<int>(model_->buffers_.width.size()) - 1;
  }
  int Width(int buffer) const { return model_->buffers_.width[buffer]; }

  ExpertSpec BaseSpec(int input_dim, int n, int fg_rank) const {
    ExpertSpec s;
    s.num_experts = n;
    s.input_dim = input_dim;
    s.hidden.assign(mc_.expert_hidden().begin(), mc_.expert_hidden().end());
    s.output_dim = mc_.expert_output_dim();
    s.hidden_act = ToAct(mc_.expert_hidden_activation());
    s.output_act = ToAct(mc_.expert_output_activation());
    s.batch_norm = mc_.expert_norm() == NORM_BATCH;
    s.norm_every_layer = mc_.expert_norm_placement() == NORM_EVERY_LAYER;
    s.bn_momentum = mc_.bn_momentum();
    s.bn_eps = mc_.bn_epsilon();
    s.swish_beta = mc_.swish_beta();
    s.feature_gate_rank = fg_rank;
    if (mc_.family() == FAMILY_HOME && mc_.home().expert_norm_swish()) {
      s.batch_norm = true;  // Fix 1: Linear → BN → Swish
      s.output_act = Act::kSwish;
    }
    return s;
  }

  // One ExpertOp: experts named names[i], all reading buffer `in`. Returns refs to them.
  std::vector<ExpertRef> Experts(const std::string& name, const std::vector<std::string>& names,
                                 int in, int fg_rank) {
    if (names.empty()) return {};
    const int n = static_cast<int>(names.size());
    const int out = Buffer(n * mc_.expert_output_dim());
    auto op = std::make_unique<ExpertOp<T>>(name, names, BaseSpec(Width(in), n, fg_rank), in, out, &rng_);
    model_->expert_ops_.push_back(op.get());
    model_->ops_.push_back(std::move(op));
    std::vector<ExpertRef> refs;
    for (int i = 0; i < n; ++i)
      refs.push_back({static_cast<int>(model_->expert_ops_.size()) - 1, out, i});
    return refs;
  }

  // out = Σ_i softmax(x W)_i e_i over `experts` (x = buffer `selector`). A single
  // expert needs no gate: out = e_0.
  int Gate(const std::string& name, int selector, const std::vector<ExpertRef>& experts, int task) {
    CHECK(!experts.empty());
    const int d = mc_.expert_output_dim();
    const int out = Buffer(d);
    if (experts.size() == 1) {
      model_->ops_.push_back(std::make_unique<SelectOp<T>>(experts[0], d, out));
      return out;
    }
    AddGate(name, selector, experts, task, MixtureGate<T>::Kind::kSoftmax, /*accumulate=*/false, out);
    return out;
  }

  // HoME self gate: out += Σ_j s_j e_j, s = σ(x W) for one expert, softmax for several.
  void SelfGate(const std::string& name, int selector, const std::vector<ExpertRef>& experts,
                int task, int out) {
    if (experts.empty()) return;
    const auto kind = experts.size() == 1 ? MixtureGate<T>::Kind::kSigmoid : MixtureGate<T>::Kind::kSoftmax;
    AddGate(name, selector, experts, task, kind, /*accumulate=*/true, out);
  }

  void AddGate(const std::string& name, int selector, const std::vector<ExpertRef>& experts, int task,
               typename MixtureGate<T>::Kind kind, bool accumulate, int out) {
    auto op = std::make_unique<GateOp<T>>(name, selector, experts, mc_.expert_output_dim(), out, task,
                                          kind, accumulate, mc_.gate_bias(), Width(selector), &rng_);
    model_->gate_ops_.push_back(op.get());
    model_->ops_.push_back(std::move(op));
  }

  int Concat(int a, int b) {
    const int out = Buffer(Width(a) + Width(b));
    model_->ops_.push_back(std::make_unique<ConcatOp<T>>(a, b, out));
    return out;
  }

  void Towers(const std::vector<int>& inputs) {
    for (int t = 0; t < model_->num_tasks(); ++t) {
      std::vector<int> widths = {Width(inputs[t])};
      widths.insert(widths.end(), mc_.tower_hidden().begin(), mc_.tower_hidden().end());
      widths.push_back(1);
      const int out = Buffer(1);
      model_->ops_.push_back(std::make_unique<TowerOp<T>>("tower." + model_->tasks_[t].name, widths,
                                                          ToAct(mc_.tower_activation()), inputs[t], out, &rng_));
      model_->tower_out_.push_back(out);
    }
  }

  static std::vector<std::string> Names(const std::string& prefix, int n) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i) v.push_back(prefix + "." + std::to_string(i));
    return v;
  }
  static std::vector<ExpertRef> Slice(const std::vector<ExpertRef>& v, int begin, int n) {
    return std::vector<ExpertRef>(v.begin() + begin, v.begin() + begin + n);
  }
  static std::vector<ExpertRef> Join(std::vector<ExpertRef> a, const std::vector<ExpertRef>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  // ------------------------------------------------------------------ CGC / PLE
  // Level j: task k's gate mixes [specific_k ; shared], selector = task k's input.
  // Below the last level, a shared gate mixes every expert of the level.
  void BuildPle(int levels, int mk, int ms) {
    const auto& tasks = model_->tasks_;
    const int num_tasks = model_->num_tasks();
    std::vector<int> task_in(num_tasks, 0);
    int shared_in = 0;
    for (int j = 1; j <= levels; ++j) {
      const std::string level = "l" + std::to_string(j);
      std::vector<std::vector<ExpertRef>> specific(num_tasks);
      std::vector<ExpertRef> shared;
      if (j == 1) {
        // Everything reads x: one ExpertOp, i.e. one GEMM for all experts of the level.
        std::vector<std::string> names;
        for (const auto& t : tasks) for (auto& n : Names(level + "." + t.name, mk)) names.push_back(n);
        for (auto& n : Names(level + ".shared", ms)) names.push_back(n);
        auto all = Experts(level + ".experts", names, 0, 0);
        for (int k = 0; k < num_tasks; ++k) specific[k] = Slice(all, k * mk, mk);
        shared = Slice(all, num_tasks * mk, ms);
      } else {
        for (int k = 0; k < num_tasks; ++k)
          specific[k] = Experts(level + "." + tasks[k].name, Names(level + "." + tasks[k].name, mk), task_in[k], 0);
        shared = Experts(level + ".shared", Names(level + ".shared", ms), shared_in, 0);
      }
      std::vector<int> next(num_tasks);
      for (int k = 0; k < num_tasks; ++k)
        next[k] = Gate(level + ".gate." + tasks[k].name, task_in[k], Join(specific[k], shared), k);
      if (j < levels) {
        std::vector<ExpertRef> all;
        for (auto& s : specific) all = Join(all, s);
        shared_in = Gate(level + ".gate.shared", shared_in, Join(all, shared), -1);
      }
      task_in = next;
    }
    Towers(task_in);
  }

  // ------------------------------------------------------------------------ OMoE
  // MMoE's one-gate ablation (models.md §1): every tower reads the same mixture
  // softmax(x W) over the n shared experts; the towers' gradients add up in it.
  void BuildOmoe(int n) {
    const auto experts = Experts("l1.experts", Names("l1.shared", n), 0, 0);
    const int mixed = Gate("l1.gate.shared", 0, experts, -1);
    Towers(std::vector<int>(model_->num_tasks(), mixed));
  }

  // ------------------------------------------------------------------------ HoME
  // Level 1 (meta): experts S¹ (global), W¹ (watch), I¹ (interaction), all read x.
  //   m^W = gate[S¹;W¹](x) (+ self gate over W¹), m^I likewise, m^S = gate[S¹;W¹;I¹](x)
  // Level 2: task t in category c: h_t = gate_t[S²(m^S) ; C²_c(m^c) ; T_t(m^c)](u_t)
  //   (+ self gate over T_t), u_t = [m^c ; m^S] or m^c; tower_t(h_t).
  // hierarchy=false: one level, h_t = gate_t[S ; T_t](x) (+ self gate over T_t).
  void BuildHome() {
    const HomeConfig& h = mc_.home();
    const auto& tasks = model_->tasks_;
    const int num_tasks = model_->num_tasks();
    const int fg1 = h.feature_gate() ? h.feature_gate_rank() : 0;
    const int fg2 = h.feature_gate() && h.feature_gate_levels() == FEATURE_GATE_BOTH_LEVELS ? fg1 : 0;
    std::vector<int> task_out(num_tasks);

    if (!h.hierarchy()) {
      const int g = h.global_experts_l1(), te = h.task_experts();
      std::vector<std::string> names = Names("home.global", g);
      for (const auto& t : tasks) for (auto& n : Names("home." + t.name, te)) names.push_back(n);
      auto all = Experts("home.experts", names, 0, fg1);
      for (int k = 0; k < num_tasks; ++k) {
        auto own = Slice(all, g + k * te, te);
        task_out[k] = Gate("home.gate." + tasks[k].name, 0, Join(Slice(all, 0, g), own), k);
        if (h.self_gate()) SelfGate("home.self." + tasks[k].name, 0, own, k, task_out[k]);
      }
      Towers(task_out);
      return;
    }

    // Level 1.
    const int g1 = h.global_experts_l1(), c1 = h.category_experts_l1();
    std::vector<std::string> l1_names = Names("home.l1.global", g1);
    for (auto& n : Names("home.l1.watch", c1)) l1_names.push_back(n);
    for (auto& n : Names("home.l1.interaction", c1)) l1_names.push_back(n);
    const auto l1 = Experts("home.l1.experts", l1_names, 0, fg1);
    const auto s1 = Slice(l1, 0, g1), w1 = Slice(l1, g1, c1), i1 = Slice(l1, g1 + c1, c1);
    const int m_shared = Gate("home.l1.gate.global", 0, Join(Join(s1, w1), i1), -1);
    int m_cat[2] = {-1, -1};  // [0] interaction, [1] watch
    for (int c = 0; c < 2; ++c) {
      bool used = false;
      for (const auto& t : tasks) used |= t.watch_group == (c == 1);
      if (!used) continue;
      const std::string cname = c == 1 ? "watch" : "interaction";
      const auto& own = c == 1 ? w1 : i1;
      m_cat[c] = Gate("home.l1.gate." + cname, 0, Join(s1, own), -1);
      if (h.self_gate()) SelfGate("home.l1.self." + cname, 0, own, -1, m_cat[c]);
    }

    // Level 2.
    const bool gate_concat = h.level2_gate_input() == HOME_GATE_INPUT_CONCAT;
    const bool expert_concat = h.level2_expert_input() == HOME_EXPERT_INPUT_CONCAT;
    const auto s2 = Experts("home.l2.global", Names("home.l2.global", h.global_experts_l2()), m_shared, fg2);
    for (int c = 0; c < 2; ++c) {
      if (m_cat[c] < 0) continue;
      const std::string cname = c == 1 ? "watch" : "interaction";
      const int u = gate_concat || expert_concat ? Concat(m_cat[c], m_shared) : -1;
      const int gate_in = gate_concat ? u : m_cat[c];
      const int expert_in = expert_concat ? u : m_cat[c];
      // Category experts and the category's task experts read the same buffer: one op.
      std::vector<int> members;
      std::vector<std::string> names = Names("home.l2." + cname, h.category_experts_l2());
      for (int k = 0; k < num_tasks; ++k) {
        if (tasks[k].watch_group != (c == 1)) continue;
        members.push_back(k);
        for (auto& n : Names("home.l2." + tasks[k].name, h.task_experts())) names.push_back(n);
      }
      auto group = Experts("home.l2." + cname + ".experts", names, expert_in, fg2);
      const auto c2 = Slice(group, 0, h.category_experts_l2());
      for (size_t i = 0; i < members.size(); ++i) {
        const int k = members[i];
        const auto own = Slice(group, h.category_experts_l2() + static_cast<int>(i) * h.task_experts(), h.task_experts());
        task_out[k] = Gate("home.l2.gate." + tasks[k].name, gate_in, Join(Join(s2, c2), own), k);
        if (h.self_gate()) SelfGate("home.l2.self." + tasks[k].name, gate_in, own, k, task_out[k]);
      }
    }
    Towers(task_out);
  }

  const LearnerConfig& config_;
  const ModelConfig& mc_;
  Rng rng_;
  std::unique_ptr<Model<T>> model_;
  MetricsRegistry* metrics_;
};

template <typename T>
StatusOr<std::unique_ptr<Model<T>>> BuildModel(const LearnerConfig& config,
                                               const std::vector<TaskSpec>& tasks, MetricsRegistry* metrics) {
  return ModelBuilder<T>(config, tasks, metrics).Build();
}

template StatusOr<std::unique_ptr<Model<float>>> BuildModel<float>(const LearnerConfig&, const std::vector<TaskSpec>&,
                                                                   MetricsRegistry*);
template StatusOr<std::unique_ptr<Model<double>>> BuildModel<double>(const LearnerConfig&, const std::vector<TaskSpec>&,
                                                                     MetricsRegistry*);

}  // namespace freshet::cpu
