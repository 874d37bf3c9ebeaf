// Classification metrics for `flowpic eval`: confusion matrix, per-class precision /
// recall / F1, macro-F1, and accuracy against coverage for confidence thresholds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "infer/verdict.hpp"

namespace flowpic {

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  uint64_t support = 0;  // true windows of the class
};

struct CoveragePoint {
  double threshold = 0;
  uint64_t covered = 0;    // windows with confidence >= threshold
  double coverage = 0;     // covered / total
  double accuracy = 0;     // over the covered windows (0 when none)
};

class Confusion {
 public:
  explicit Confusion(int classes) : n_(classes), m_(static_cast<size_t>(classes) * classes, 0) {}
  void add(int truth, int predicted) { ++m_[static_cast<size_t>(truth) * n_ + predicted]; }
  uint64_t at(int truth, int predicted) const { return m_[static_cast<size_t>(truth) * n_ + predicted]; }
  int classes() const noexcept { return n_; }
  uint64_t total() const;
  double accuracy() const;
  ClassScores scores(int c) const;  // precision/recall/F1 are 0 when undefined (no predictions / support)
  double macro_f1() const;          // mean F1 over classes with support > 0

  // Text table (rows = truth, columns = predicted) with per-class scores.
  std::string table(const std::vector<std::string>& names) const;
  std::string csv(const std::vector<std::string>& names) const;
  nlohmann::json to_json(const std::vector<std::string>& names) const;

 private:
  int n_;
  std::vector<uint64_t> m_;
};

// confidence[i] = top probability of window i, correct[i] = its prediction was right.
std::vector<CoveragePoint> accuracy_coverage(const std::vector<float>& confidence, const std::vector<uint8_t>& correct,
                                             const std::vector<double>& thresholds);

// Calibration: equal-width confidence bins over [0, 1]; ECE = sum over bins of
// (windows in bin / all) * |accuracy - mean confidence|.
struct CalibrationBin {
  double confidence = 0, accuracy = 0;  // means over the bin's windows (0 when empty)
  uint64_t count = 0;
};
struct Calibration {
  double ece = 0;
  std::vector<CalibrationBin> bins;
};
Calibration calibration(const std::vector<float>& confidence, const std::vector<uint8_t>& correct, int bins = 15);

// apply_temperature: infer/verdict.hpp.
// The T in [0.05, 20] (log grid, then refined) with the least mean negative log-likelihood
// of the true classes. Fit it on held-back captures, never on the test.
double fit_temperature(const std::vector<float>& probs, const std::vector<int>& truth, int k);

}  // namespace flowpic
