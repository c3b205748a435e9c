// LoadCensus; see census_data.h.
#include "ingest/census_data.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string_view>
#include <vector>

namespace freshet::ingest {
namespace {

constexpr int kFields = 42;
constexpr int kEducation = 4, kMarital = 7, kInstanceWeight = 24, kIncome = 41;

enum class Col { kCategorical, kMoney, kDense, kSkip };
struct DenseRule {
  int column;
  double divisor;  // value / divisor, or log1p(value) when 0
};
// age, wage_per_hour, capital_gains, capital_losses, stock_dividends, num_emp, weeks_worked
constexpr DenseRule kDense[] = {{0, 100}, {5, 0}, {16, 0}, {17, 0}, {18, 0}, {30, 6}, {39, 52}};

bool IsDense(int column) {
  return std::any_of(std::begin(kDense), std::end(kDense), [&](const DenseRule& r) { return r.column == column; });
}

bool IsCollegeDegree(std::string_view e) {
  return e.rfind("Associates degree", 0) == 0 || e.rfind("Bachelors degree", 0) == 0 ||
         e.rfind("Masters degree", 0) == 0 || e.rfind("Prof school degree", 0) == 0 ||
         e.rfind("Doctorate degree", 0) == 0;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> f;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    std::string_view v = line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    f.push_back(v);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return f;
}

}  // namespace

StatusOr<EvalData> LoadCensus(const CensusOptions& o) {
  if (o.group != 1 && o.group != 2) return InvalidArgumentError("census group must be 1 or 2");
  if (!(o.test_fraction > 0 && o.test_fraction < 1)) return InvalidArgumentError("census test_fraction must be in (0, 1)");
  if (o.embedding_dim < 1) return InvalidArgumentError("census embedding_dim must be >= 1");
  gzFile file = gzopen(o.path.c_str(), "rb");
  if (file == nullptr) return NotFoundError("census data " + o.path + ": cannot open");

  EvalData data;
  data.name = o.group == 1 ? "census-income+marital" : "census-education+marital";
  for (const char* name : {o.group == 1 ? "income" : "education", "never_married"}) {
    TaskConfig t;
    t.set_name(name);
    t.add_label_kinds(LABEL_CLICK);  // unused here; keeps the task config valid
    data.tasks.push_back(t);
  }
  auto is_feature = [&](int c) {
    return c != kInstanceWeight && c != kIncome && c != kMarital && !(o.group == 2 && c == kEducation);
  };
  for (int c = 0; c < kFields; ++c) {
    if (!is_feature(c)) continue;
    if (IsDense(c)) {
      data.input.add_dense_slots()->set_slot(c);
    } else {
      auto* s = data.input.add_sparse_slots();
      s->set_slot(c);
      s->set_dim(o.embedding_dim);
    }
  }

  std::vector<Sample> rows;
  std::string line;
  uint64_t line_no = 0;
  while (ReadGzLine(file, &line)) {
    ++line_no;
    if (line.empty()) continue;
    const std::vector<std::string_view> f = SplitFields(line);
    if (f.size() != kFields) {
      gzclose(file);
      return DataLossError(o.path + ":" + std::to_string(line_no) + ": " + std::to_string(f.size()) +
                           " fields, expected " + std::to_string(kFields));
    }
    Sample s;
    s.set_sample_id("census-" + std::to_string(line_no));
    s.set_user_id(line_no);
    s.set_item_id(1);
    for (const DenseRule& r : kDense) {
      const std::string text(f[r.column]);
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(v)) {
        gzclose(file);
        return DataLossError(o.path + ":" + std::to_string(line_no) + ": column " + std::to_string(r.column) +
                             " is not a number: '" + text + "'");
      }
      auto* d = s.add_dense();
      d->set_slot(r.column);
      d->add_values(static_cast<float>(r.divisor > 0 ? v / r.divisor : std::log1p(std::max(0.0, v))));
    }
    for (int c = 0; c < kFields; ++c) {
      if (!is_feature(c) || IsDense(c) || f[c] == "?") continue;
      auto* sp = s.add_sparse();
      sp->set_slot(c);
      sp->add_ids(HashId(std::to_string(c) + ":" + std::string(f[c])));
    }
    const bool main = o.group == 1 ? f[kIncome] == "50000+." : IsCollegeDegree(f[kEducation]);
    s.add_label(main ? 1.0f : 0.0f);
    s.add_label(f[kMarital] == "Never married" ? 1.0f : 0.0f);
    s.add_mask(true);
    s.add_mask(true);
    rows.push_back(std::move(s));
  }
  gzclose(file);
  if (rows.size() < 10) return DataLossError("census data " + o.path + ": only " + std::to_string(rows.size()) + " rows");

  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(o.seed));
  const size_t train_n = static_cast<size_t>(std::llround(rows.size() * (1 - o.test_fraction)));
  for (size_t i = 0; i < order.size(); ++i) {
    Sample& s = rows[order[i]];
    s.set_event_time_ms(static_cast<int64_t>(i));
    (i < train_n ? data.train : data.test).push_back(std::move(s));
  }
  data.time_ordered = false;
  data.description = "census " + o.path.substr(o.path.find_last_of('/') + 1) + ": " + std::to_string(rows.size()) +
                     " rows, seeded split (seed " + std::to_string(o.seed) + ") " + std::to_string(data.train.size()) +
                     " train / " + std::to_string(data.test.size()) + " test";
  return data;
}

}  // namespace freshet::ingest
