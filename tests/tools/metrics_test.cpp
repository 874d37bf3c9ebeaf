// Evaluation metrics on confusion matrices with hand-computed answers.
#include <gtest/gtest.h>

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
