// Evaluation metrics on confusion matrices with hand-computed answers.
#include <gtest/gtest.h>

#include <vector>

#include "infer/verdict.hpp"
#include "tools/metrics.hpp"

using namespace flowpic;

TEST(Metrics, PrecisionRecallF1OnAKnownMatrix) {
  // truth A: 8 right, 2 as B; truth B: 1 as A, 4 right; truth C: 5 as B (never predicted C).
  Confusion m(3);
  for (int i = 0; i < 8; ++i) m.add(0, 0);
  for (int i = 0; i < 2; ++i) m.add(0, 1);
  m.add(1, 0);
  for (int i = 0; i < 4; ++i) m.add(1, 1);
  for (int i = 0; i < 5; ++i) m.add(2, 1);
  EXPECT_EQ(m.total(), 20u);
  EXPECT_DOUBLE_EQ(m.accuracy(), 12.0 / 20.0);
  const auto a = m.scores(0);
  EXPECT_DOUBLE_EQ(a.precision, 8.0 / 9.0);
  EXPECT_DOUBLE_EQ(a.recall, 0.8);
  EXPECT_NEAR(a.f1, 2 * (8.0 / 9) * 0.8 / (8.0 / 9 + 0.8), 1e-12);
  const auto b = m.scores(1);
  EXPECT_DOUBLE_EQ(b.precision, 4.0 / 11.0);
  EXPECT_DOUBLE_EQ(b.recall, 0.8);
  const auto c = m.scores(2);
  EXPECT_EQ(c.precision, 0.0);
  EXPECT_EQ(c.f1, 0.0);
  EXPECT_EQ(c.support, 5u);
  EXPECT_NEAR(m.macro_f1(), (a.f1 + b.f1 + 0.0) / 3, 1e-12);
  const std::vector<std::string> names = {"A", "B", "C"};
  EXPECT_NE(m.csv(names).find("A,8,2,0,"), std::string::npos);
  EXPECT_NE(m.table(names).find("truth\\pred"), std::string::npos);
  EXPECT_EQ(m.to_json(names)["confusion"]["rows_truth_cols_predicted"][2][1], 5);
}

TEST(Metrics, AccuracyAgainstCoverage) {
  const std::vector<float> conf = {0.95f, 0.9f, 0.6f, 0.4f, 0.99f};
  const std::vector<uint8_t> ok = {1, 0, 1, 0, 1};
  const auto pts = accuracy_coverage(conf, ok, {0.0, 0.5, 0.9, 1.0});
  ASSERT_EQ(pts.size(), 4u);
  EXPECT_EQ(pts[0].covered, 5u);
  EXPECT_DOUBLE_EQ(pts[0].accuracy, 0.6);
  EXPECT_EQ(pts[1].covered, 4u);
  EXPECT_DOUBLE_EQ(pts[1].accuracy, 0.75);
  EXPECT_DOUBLE_EQ(pts[1].coverage, 0.8);
  EXPECT_EQ(pts[2].covered, 3u);  // 0.9 itself is covered
  EXPECT_NEAR(pts[2].accuracy, 2.0 / 3, 1e-12);
  EXPECT_EQ(pts[3].covered, 0u);
  EXPECT_EQ(pts[3].accuracy, 0.0);
}

TEST(Calibration, TemperatureHasTheClosedFormAnswer) {
  // Two classes: (0.8, 0.2) at T = 2 is (sqrt .8, sqrt .2) normalised = (2/3, 1/3).
  float p[4] = {0.8f, 0.2f, 0.5f, 0.5f};
  apply_temperature(p, 2, 2, 2.0);
  EXPECT_NEAR(p[0], 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(p[1], 1.0 / 3.0, 1e-6);
  EXPECT_NEAR(p[2], 0.5, 1e-6);
  float q[2] = {0.8f, 0.2f};
  apply_temperature(q, 1, 2, 1.0);
  EXPECT_EQ(q[0], 0.8f);
  // 100 windows all predicted (0.9, 0.1), right 75 times: the NLL-optimal confidence is 0.75,
  // i.e. 9^(1/T) = 3, T = ln 9 / ln 3 = 2.
  std::vector<float> probs;
  std::vector<int> truth;
  for (int i = 0; i < 100; ++i) {
    probs.push_back(0.9f);
    probs.push_back(0.1f);
    truth.push_back(i < 75 ? 0 : 1);
  }
  EXPECT_NEAR(fit_temperature(probs, truth, 2), 2.0, 0.01);
}

TEST(Calibration, EceOfKnownBins) {
  // 10 windows at 0.95 confidence, 8 right (gap 0.15); 10 at 0.55, 5 right (gap 0.05):
  // ECE = 0.5 * 0.15 + 0.5 * 0.05 = 0.10.
  std::vector<float> conf;
  std::vector<uint8_t> ok;
  for (int i = 0; i < 10; ++i) conf.push_back(0.95f), ok.push_back(i < 8);
  for (int i = 0; i < 10; ++i) conf.push_back(0.55f), ok.push_back(i < 5);
  const auto c = calibration(conf, ok, 10);
  EXPECT_NEAR(c.ece, 0.10, 1e-6);
  EXPECT_EQ(c.bins[9].count, 10u);
  EXPECT_NEAR(c.bins[9].accuracy, 0.8, 1e-12);
  EXPECT_EQ(c.bins[5].count, 10u);
  EXPECT_EQ(c.bins[0].count, 0u);
}

// Flow evidence: mean of the windows' probabilities per (slot, generation), worked by hand.
TEST(FlowEvidenceTest, MeanOfTheFlowsWindowsAndANewGenerationStartsOver) {
  FlowEvidence ev;
  ev.reset(8, 3);
  const float a[3] = {0.6f, 0.3f, 0.1f}, b[3] = {0.1f, 0.8f, 0.1f}, c[3] = {0.2f, 0.7f, 0.1f};
  float conf = 0;
  uint32_t n = 0;
  EXPECT_EQ(ev.add(5, 1, a, &conf, &n), 0);
  EXPECT_FLOAT_EQ(conf, 0.6f);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(ev.add(5, 1, b, &conf, &n), 1);  // mean {0.35, 0.55, 0.1}
  EXPECT_FLOAT_EQ(conf, 0.55f);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(ev.add(2, 4, a, &conf, &n), 0);  // another slot is another flow
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(ev.add(5, 2, a, &conf, &n), 0);  // slot 5 reused by a new flow: starts over
  EXPECT_FLOAT_EQ(conf, 0.6f);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(ev.add(5, 2, c, &conf, &n), 1);  // mean {0.4, 0.5, 0.1}
  EXPECT_FLOAT_EQ(conf, 0.5f);
  EXPECT_EQ(ev.add(99, 1, c, &conf, &n), 1);  // out of range: the window alone
  EXPECT_EQ(n, 1u);
  EXPECT_FLOAT_EQ(conf, 0.7f);
  // Too many classes to keep: every window stands alone.
  FlowEvidence big;
  big.reset(8, FlowEvidence::kMaxClasses + 1);
  std::vector<float> p(FlowEvidence::kMaxClasses + 1, 0.f);
  p[3] = 1.f;
  EXPECT_EQ(big.add(1, 1, p.data(), &conf, &n), 3);
  EXPECT_EQ(big.add(1, 1, p.data(), &conf, &n), 3);
  EXPECT_EQ(n, 1u);
}
