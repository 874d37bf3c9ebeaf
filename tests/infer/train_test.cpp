// Training on a problem with a known answer, determinism, early stopping, predict().
#include <gtest/gtest.h>

#include <random>

#include "infer/train.hpp"

namespace flowpic {
namespace {

// Class = which quadrant of the picture holds a lit blob; noise pixels elsewhere.
Dataset quadrant_dataset(int n, int R, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  Dataset d;
  d.R = R;
  d.pictures.assign(static_cast<size_t>(n) * R * R, 0.f);
  const int h = R / 2;
  for (int i = 0; i < n; ++i) {
    const int q = static_cast<int>(rng() % 4);
    float* p = d.pictures.data() + static_cast<size_t>(i) * R * R;
    const int y0 = (q / 2) * h + static_cast<int>(rng() % (h - 4)), x0 = (q % 2) * h + static_cast<int>(rng() % (h - 4));
    for (int k = 0; k < 8; ++k) p[(y0 + rng() % 4) * R + x0 + rng() % 4] = 0.5f + 0.5f * u(rng);
    for (int k = 0; k < 6; ++k) p[(rng() % R) * R + rng() % R] = 0.3f * u(rng);  // noise anywhere
    d.labels.push_back(q);
  }
  return d;
}

ModelInfo quadrant_info() {
  ModelInfo info;
  info.arch = Arch::kLeNet;
  info.name = "quadrants";
  info.classes = {"top-left", "top-right", "bottom-left", "bottom-right"};
  return info;
}

TrainOptions quick_options() {
  TrainOptions o;
  o.epochs = 8;
  o.batch = 32;
  o.threads = 1;
  o.seed = 5;
  o.patience = 3;
  o.holdout = 0.15f;
  return o;
}

TEST(Train, LearnsQuadrants) {
  const Dataset tr = quadrant_dataset(1200, 32, 1), te = quadrant_dataset(400, 32, 2);
  auto m = Model::create(quadrant_info(), 3);
  const float before = accuracy(predict(*m, te, 64, 1), te.labels);
  int calls = 0;
  const TrainReport r = train(m, tr, quick_options(), [&](int epoch, int epochs, float loss, float acc) {
    ++calls;
    EXPECT_EQ(epoch, calls);
    EXPECT_EQ(epochs, 8);
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_GE(acc, 0.f);
  });
  EXPECT_EQ(calls, r.epochs_run);
  EXPECT_EQ(r.train_size + r.holdout_size, 1200u);
  EXPECT_NEAR(static_cast<double>(r.holdout_size), 180.0, 4.0);
  ASSERT_EQ(r.train_loss.size(), static_cast<size_t>(r.epochs_run));
  EXPECT_LT(r.train_loss.back(), r.train_loss.front());
  EXPECT_GT(r.best_holdout_acc, 0.95f);
  std::vector<float> probs;
  const auto pred = predict(*m, te, 64, 1, &probs);
  const float after = accuracy(pred, te.labels);
  EXPECT_GT(after, 0.95f) << "before training " << before;
  EXPECT_LT(before, 0.5f);
  ASSERT_EQ(probs.size(), te.size() * 4);
  // Weights the model holds are the best epoch's: re-measuring the holdout is not possible from
  // outside, but the saved and reloaded model must predict the same.
  const std::string path = ::testing::TempDir() + "/quadrants.fpm";
  m->save(path);
  auto l = Model::load(path);
  EXPECT_EQ(predict(*l, te, 17, 1), pred);
}

TEST(Train, SameSeedSameWeights) {
  const Dataset tr = quadrant_dataset(300, 32, 7);
  TrainOptions o = quick_options();
  o.epochs = 2;
  o.threads = 2;
  auto a = Model::create(quadrant_info(), 11), b = Model::create(quadrant_info(), 11);
  const TrainReport ra = train(a, tr, o), rb = train(b, tr, o);
  EXPECT_EQ(ra.train_loss, rb.train_loss);
  for (size_t i = 0; i < a->tensors().size(); ++i) EXPECT_EQ(a->tensors()[i].data, b->tensors()[i].data);
  // A different seed trains differently.
  o.seed = 6;
  auto c = Model::create(quadrant_info(), 11);
  train(c, tr, o);
  EXPECT_NE(a->tensors()[0].data, c->tensors()[0].data);
}

TEST(Train, EarlyStoppingKeepsBestEpoch) {
  // Labels unrelated to the pictures: the held-back accuracy cannot keep improving.
  Dataset tr = quadrant_dataset(400, 32, 9);
  std::mt19937 rng(4);
  for (int& l : tr.labels) l = static_cast<int>(rng() % 4);
  TrainOptions o = quick_options();
  o.epochs = 40;
  o.patience = 2;
  auto m = Model::create(quadrant_info(), 1);
  const TrainReport r = train(m, tr, o);
  EXPECT_LT(r.epochs_run, 40);
  EXPECT_EQ(r.epochs_run - r.best_epoch, 2);
  EXPECT_EQ(r.best_holdout_acc, *std::max_element(r.holdout_acc.begin(), r.holdout_acc.end()));
}

TEST(Train, StepLossFallsOnOneBatch) {
  const Dataset tr = quadrant_dataset(32, 32, 3);
  auto m = Model::create(quadrant_info(), 2);
  TrainOptions o = quick_options();
  Trainer t(m, o, 32);
  const float first = t.step(tr.pictures.data(), tr.labels.data(), 32);
  float last = first;
  for (int i = 0; i < 40; ++i) last = t.step(tr.pictures.data(), tr.labels.data(), 32);
  EXPECT_LT(last, 0.5f * first);
  EXPECT_THROW(t.step(tr.pictures.data(), tr.labels.data(), 33), ModelError);
  std::vector<int> bad(tr.labels);
  bad[3] = 4;
  EXPECT_THROW(t.step(tr.pictures.data(), bad.data(), 32), ModelError);
}

TEST(Train, RefusesMismatchedData) {
  auto m = Model::create(quadrant_info(), 1);
  Dataset d = quadrant_dataset(10, 32, 1);
  d.R = 64;
  EXPECT_THROW(train(m, d, quick_options()), std::invalid_argument);
  d = quadrant_dataset(10, 32, 1);
  d.labels[2] = 9;
  EXPECT_THROW(train(m, d, quick_options()), std::invalid_argument);
  d = quadrant_dataset(10, 32, 1);
  d.pictures.pop_back();
  EXPECT_THROW(predict(*m, d, 4, 1), std::invalid_argument);
}

}  // namespace
}  // namespace flowpic
