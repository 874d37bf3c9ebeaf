#include "tools/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace flowpic {

uint64_t Confusion::total() const {
  uint64_t t = 0;
  for (auto v : m_) t += v;
  return t;
}

double Confusion::accuracy() const {
  uint64_t right = 0;
  for (int c = 0; c < n_; ++c) right += at(c, c);
  const uint64_t t = total();
  return t ? static_cast<double>(right) / static_cast<double>(t) : 0.0;
}

ClassScores Confusion::scores(int c) const {
  ClassScores s;
  uint64_t predicted = 0;
  for (int t = 0; t < n_; ++t) predicted += at(t, c);
  for (int p = 0; p < n_; ++p) s.support += at(c, p);
  const double tp = static_cast<double>(at(c, c));
  s.precision = predicted ? tp / static_cast<double>(predicted) : 0.0;
  s.recall = s.support ? tp / static_cast<double>(s.support) : 0.0;
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

double Confusion::macro_f1() const {
  double sum = 0;
  int k = 0;
  for (int c = 0; c < n_; ++c) {
    const auto s = scores(c);
    if (s.support == 0) continue;
    sum += s.f1;
    ++k;
  }
  return k ? sum / k : 0.0;
}

std::string Confusion::table(const std::vector<std::string>& names) const {
  size_t w = 9;
  for (const auto& n : names) w = std::max(w, n.size() + 1);
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-*s", static_cast<int>(w), "truth\\pred");
  out += buf;
  for (int c = 0; c < n_; ++c) {
    std::snprintf(buf, sizeof buf, " %*s", static_cast<int>(std::max<size_t>(7, names[c].size())), names[c].c_str());
    out += buf;
  }
  out += "  precision  recall      F1  support\n";
  for (int t = 0; t < n_; ++t) {
    std::snprintf(buf, sizeof buf, "%-*s", static_cast<int>(w), names[t].c_str());
    out += buf;
    for (int p = 0; p < n_; ++p) {
      std::snprintf(buf, sizeof buf, " %*llu", static_cast<int>(std::max<size_t>(7, names[p].size())),
                    static_cast<unsigned long long>(at(t, p)));
      out += buf;
    }
    const auto s = scores(t);
    std::snprintf(buf, sizeof buf, "  %9.4f %7.4f %7.4f %8llu\n", s.precision, s.recall, s.f1,
                  static_cast<unsigned long long>(s.support));
    out += buf;
  }
  return out;
}

std::string Confusion::csv(const std::vector<std::string>& names) const {
  std::string out = "truth";
  for (int c = 0; c < n_; ++c) {
    out += ',';
    out += names[c];
  }
  out += ",precision,recall,f1,support\n";
  char buf[128];
  for (int t = 0; t < n_; ++t) {
    out += names[t];
    for (int p = 0; p < n_; ++p) {
      out += ',';
      out += std::to_string(at(t, p));
    }
    const auto s = scores(t);
    std::snprintf(buf, sizeof buf, ",%.6f,%.6f,%.6f,%llu\n", s.precision, s.recall, s.f1,
                  static_cast<unsigned long long>(s.support));
    out += buf;
  }
  return out;
}

nlohmann::json Confusion::to_json(const std::vector<std::string>& names) const {
  nlohmann::ordered_json j;
  j["windows"] = total();
  j["accuracy"] = accuracy();
  j["macro_f1"] = macro_f1();
  nlohmann::ordered_json per = nlohmann::ordered_json::object();
  for (int c = 0; c < n_; ++c) {
    const auto s = scores(c);
    per[names[c]] = {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}};
  }
  j["per_class"] = per;
  std::vector<std::vector<uint64_t>> rows(n_, std::vector<uint64_t>(n_));
  for (int t = 0; t < n_; ++t)
    for (int p = 0; p < n_; ++p) rows[t][p] = at(t, p);
  j["confusion"] = {{"classes", names}, {"rows_truth_cols_predicted", rows}};
  return nlohmann::json(j);
}

std::vector<CoveragePoint> accuracy_coverage(const std::vector<float>& confidence, const std::vector<uint8_t>& correct,
                                             const std::vector<double>& thresholds) {
  std::vector<CoveragePoint> out;
  for (double t : thresholds) {
    CoveragePoint p;
    p.threshold = t;
    uint64_t right = 0;
    for (size_t i = 0; i < confidence.size(); ++i) {
      if (confidence[i] >= static_cast<float>(t)) {  // compare as the verdict does (float)
        ++p.covered;
        right += correct[i] ? 1 : 0;
      }
    }
    p.coverage = confidence.empty() ? 0.0 : static_cast<double>(p.covered) / static_cast<double>(confidence.size());
    p.accuracy = p.covered ? static_cast<double>(right) / static_cast<double>(p.covered) : 0.0;
    out.push_back(p);
  }
  return out;
}

Calibration calibration(const std::vector<float>& confidence, const std::vector<uint8_t>& correct, int bins) {
  Calibration c;
  bins = std::max(1, bins);
  c.bins.resize(static_cast<size_t>(bins));
  std::vector<double> conf_sum(static_cast<size_t>(bins), 0), ok(static_cast<size_t>(bins), 0);
  const size_t n = std::min(confidence.size(), correct.size());
  for (size_t i = 0; i < n; ++i) {
    const double p = std::clamp(static_cast<double>(confidence[i]), 0.0, 1.0);
    const size_t b = std::min(static_cast<size_t>(p * bins), static_cast<size_t>(bins - 1));
    ++c.bins[b].count;
    conf_sum[b] += p;
    ok[b] += correct[i] ? 1 : 0;
  }
  for (size_t b = 0; b < c.bins.size(); ++b) {
    auto& x = c.bins[b];
    if (!x.count) continue;
    x.confidence = conf_sum[b] / static_cast<double>(x.count);
    x.accuracy = ok[b] / static_cast<double>(x.count);
    c.ece += static_cast<double>(x.count) / static_cast<double>(n) * std::fabs(x.accuracy - x.confidence);
  }
  return c;
}

namespace {
double nll_at(const std::vector<float>& probs, const std::vector<int>& truth, int k, double t) {
  std::vector<float> q(probs);
  apply_temperature(q.data(), truth.size(), k, t);
  double s = 0;
  for (size_t r = 0; r < truth.size(); ++r) s -= std::log(std::max(static_cast<double>(q[r * k + truth[r]]), 1e-12));
  return truth.empty() ? 0 : s / static_cast<double>(truth.size());
}
}  // namespace

double fit_temperature(const std::vector<float>& probs, const std::vector<int>& truth, int k) {
  if (truth.empty() || k <= 0 || probs.size() < truth.size() * static_cast<size_t>(k)) return 1.0;
  double best_t = 1.0, best = nll_at(probs, truth, k, 1.0);
  for (double lt = std::log(0.05); lt <= std::log(20.0) + 1e-9; lt += std::log(20.0 / 0.05) / 60) {
    const double v = nll_at(probs, truth, k, std::exp(lt));
    if (v < best) best = v, best_t = std::exp(lt);
  }
  // Golden-section refinement around the grid's best.
  double a = best_t / 1.12, b = best_t * 1.12;
  for (int it = 0; it < 30; ++it) {
    const double m1 = b - (b - a) / 1.618, m2 = a + (b - a) / 1.618;
    if (nll_at(probs, truth, k, m1) < nll_at(probs, truth, k, m2)) b = m2;
    else a = m1;
  }
  const double t = (a + b) / 2;
  return nll_at(probs, truth, k, t) < best ? t : best_t;
}

}  // namespace flowpic
