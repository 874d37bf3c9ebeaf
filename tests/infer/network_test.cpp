// oneDNN forward against a plain-loop reference, and the Trainer's gradients against
// finite differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "infer/model.hpp"
#include "infer/network.hpp"

namespace flowpic {
namespace {

ModelInfo info_for(Arch arch, int R, int classes, int channels = 1) {
  ModelInfo info;
  info.arch = arch;
  info.picture.resolution = static_cast<uint32_t>(R);
  info.picture.channels = static_cast<uint32_t>(channels);
  info.picture.window.bidirectional = channels == 2;
  info.name = "t";
  for (int c = 0; c < classes; ++c) info.classes.push_back("c" + std::to_string(c));
  return info;
}

// Sparse pictures in [0,1], like real FlowPics (most pixels empty).
std::vector<float> random_pictures(int n, int R, uint32_t seed, float density = 0.15f, int channels = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> p(static_cast<size_t>(n) * channels * R * R);
  for (float& v : p) v = u(rng) < density ? u(rng) : 0.f;
  return p;
}

// ---- plain-loop reference (double accumulation) ----
using Vec = std::vector<double>;

// x: [C][H][W] of one picture; w: [O][C][k][k]; same/explicit padding.
Vec conv_ref(const Vec& x, int C, int H, const Tensor& w, const Tensor& b, int stride, int pad_l, int out) {
  const int O = static_cast<int>(w.dims[0]), k = static_cast<int>(w.dims[2]);
  Vec y(static_cast<size_t>(O) * out * out);
  for (int o = 0; o < O; ++o)
    for (int oy = 0; oy < out; ++oy)
      for (int ox = 0; ox < out; ++ox) {
        double s = b.data[o];
        for (int c = 0; c < C; ++c)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const int iy = oy * stride - pad_l + ky, ix = ox * stride - pad_l + kx;
              if (iy < 0 || ix < 0 || iy >= H || ix >= H) continue;
              s += x[(static_cast<size_t>(c) * H + iy) * H + ix] * w.data[((static_cast<size_t>(o) * C + c) * k + ky) * k + kx];
            }
        y[(static_cast<size_t>(o) * out + oy) * out + ox] = std::max(s, 0.0);  // ReLU
      }
  return y;
}
Vec pool_ref(const Vec& x, int C, int H, int out) {
  Vec y(static_cast<size_t>(C) * out * out);
  for (int c = 0; c < C; ++c)
    for (int oy = 0; oy < out; ++oy)
      for (int ox = 0; ox < out; ++ox) {
        double m = -1e300;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx)
            m = std::max(m, x[(static_cast<size_t>(c) * H + 2 * oy + dy) * H + 2 * ox + dx]);
        y[(static_cast<size_t>(c) * out + oy) * out + ox] = m;
      }
  return y;
}
Vec fc_ref(const Vec& x, const Tensor& w, const Tensor& b, bool relu) {
  const size_t O = static_cast<size_t>(w.dims[0]), I = static_cast<size_t>(w.dims[1]);
  Vec y(O);
  for (size_t o = 0; o < O; ++o) {
    double s = b.data[o];
    for (size_t i = 0; i < I; ++i) s += x[i] * w.data[o * I + i];
    y[o] = relu ? std::max(s, 0.0) : s;
  }
  return y;
}
Vec forward_ref(const Model& m, const float* pic) {
  const ArchGeometry g = arch_geometry(m.info().arch, m.resolution());
  const auto& T = m.tensors();
  Vec x(pic, pic + static_cast<size_t>(m.channels()) * g.input * g.input);
  Vec a = conv_ref(x, m.channels(), static_cast<int>(g.input), T[0], T[1], static_cast<int>(g.conv1.stride),
                   static_cast<int>(g.conv1.pad_l), static_cast<int>(g.c1));
  a = pool_ref(a, static_cast<int>(g.conv1.channels), static_cast<int>(g.c1), static_cast<int>(g.p1));
  a = conv_ref(a, static_cast<int>(g.conv1.channels), static_cast<int>(g.p1), T[2], T[3],
               static_cast<int>(g.conv2.stride), 0, static_cast<int>(g.c2));
  a = pool_ref(a, static_cast<int>(g.conv2.channels), static_cast<int>(g.c2), static_cast<int>(g.p2));
  size_t ti = 4;
  for (size_t i = 0; i < g.fc_hidden.size(); ++i, ti += 2) a = fc_ref(a, T[ti], T[ti + 1], true);
  a = fc_ref(a, T[ti], T[ti + 1], false);
  const double mx = *std::max_element(a.begin(), a.end());
  double s = 0;
  for (double& v : a) s += (v = std::exp(v - mx));
  for (double& v : a) v /= s;
  return a;
}

// Random non-zero biases too, so the reference checks them.
std::shared_ptr<Model> model_with_biases(Arch arch, int R, int classes, uint64_t seed, int channels = 1) {
  auto m = Model::create(info_for(arch, R, classes, channels), seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  for (auto& t : m->mutable_tensors())
    if (t.dims.size() == 1)
      for (float& v : t.data) v = u(rng);
  return m;
}

void check_against_reference(Arch arch, int R, int classes, int batch, int n, int channels = 1,
                             float density = 0.15f) {
  auto m = model_with_biases(arch, R, classes, 9, channels);
  Network net(m, batch, 2);
  auto pics = random_pictures(n, R, 21, density, channels);
  std::vector<float> probs(static_cast<size_t>(n) * classes);
  net.classify(pics.data(), n, probs.data());
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    const Vec ref = forward_ref(*m, pics.data() + static_cast<size_t>(i) * channels * R * R);
    double sum = 0;
    for (int c = 0; c < classes; ++c) {
      worst = std::max(worst, std::abs(ref[c] - probs[static_cast<size_t>(i) * classes + c]));
      sum += probs[static_cast<size_t>(i) * classes + c];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  EXPECT_LT(worst, 1e-4) << arch_name(arch) << " R=" << R;
  EXPECT_EQ(net.errors(), 0u);
  // Probabilities must not be trivially uniform, or the comparison says little.
  float maxp = 0;
  for (float p : probs) maxp = std::max(maxp, p);
  EXPECT_GT(maxp, 1.0f / classes + 0.02f);
}

TEST(NetworkForward, LeNet32MatchesReference) { check_against_reference(Arch::kLeNet, 32, 5, 16, 16); }
TEST(NetworkForward, LeNetOddSizeAndPartialBatchMatchReference) {
  check_against_reference(Arch::kLeNet, 37, 3, 16, 11);  // pool over odd sizes; batch padded 11 -> 16
}
TEST(NetworkForward, TwoChannelLeNetMatchesReference) {
  check_against_reference(Arch::kLeNet, 32, 5, 16, 13, 2);  // conv1 reads both planes
}
TEST(NetworkForward, TwoChannelFlowPicArchMatchesReference) { check_against_reference(Arch::kFlowPic, 151, 4, 2, 2, 2); }
TEST(NetworkForward, TheSecondChannelChangesTheAnswer) {
  // The same first plane with a different second plane must give different outputs, or the
  // network would be reading one channel only.
  auto m = model_with_biases(Arch::kLeNet, 32, 4, 5, 2);
  Network net(m, 2, 1);
  auto pics = random_pictures(2, 32, 8, 0.15f, 2);
  std::copy(pics.begin(), pics.begin() + 32 * 32, pics.begin() + 2 * 32 * 32);  // picture 1's plane 0 = picture 0's
  std::vector<float> probs(8);
  net.classify(pics.data(), 2, probs.data());
  double diff = 0;
  for (int c = 0; c < 4; ++c) diff += std::abs(probs[c] - probs[4 + c]);
  EXPECT_GT(diff, 1e-3);
}
// Pictures of 20-packet windows light a few pixels: the first layer then runs as a scatter of
// the lit pixels (not oneDNN's dense kernel), and must give the same outputs.
TEST(NetworkForward, SparseFirstLayerMatchesReference) {
  for (int channels : {1, 2}) {
    SCOPED_TRACE(channels);
    check_against_reference(Arch::kLeNet, 32, 5, 16, 16, channels, 0.02f);
    auto m = model_with_biases(Arch::kLeNet, 32, 5, 9, channels);
    Network net(m, 16, 1);
    auto sparse = random_pictures(16, 32, 4, 0.02f, channels), dense = random_pictures(16, 32, 4, 0.5f, channels);
    std::vector<float> probs(16 * 5);
    net.classify(sparse.data(), 16, probs.data());
    if (!net.sparse_capable()) {  // oneDNN chose a layout the scatter does not write (no AVX2?)
      EXPECT_EQ(net.dense_batches(), 1u);
      continue;
    }
    EXPECT_EQ(net.sparse_batches(), 1u) << "the sparse path was not taken";
    net.classify(dense.data(), 16, probs.data());
    EXPECT_EQ(net.dense_batches(), 1u) << "dense pictures should take oneDNN's kernel";
  }
  // A padded batch (5 pictures in a pipeline of 8: the rows past 5 are stale) too.
  check_against_reference(Arch::kLeNet, 32, 3, 16, 5, 2, 0.02f);
}
// Issue 17: a model whose weights overflow gives NaN for every picture (every window would
// become class 0); the probe that flowpicd runs before serving a model says so.
TEST(NetworkForward, ProbeRefusesAModelThatOverflows) {
  auto good = model_with_biases(Arch::kLeNet, 32, 5, 9, 2);
  EXPECT_EQ(Network(good, 8, 1).probe_outputs(), "");
  auto bad = model_with_biases(Arch::kLeNet, 32, 5, 9, 2);
  auto& T = bad->mutable_tensors();
  // The final layer finite but huge (the case): the logits overflow to inf and the
  // softmax to NaN.
  auto& last = T[T.size() - 2].data;
  for (size_t i = 0; i < last.size(); ++i) last[i] = i % 2 ? 3e38f : -3e38f;
  const std::string why = Network(bad, 8, 1).probe_outputs();
  EXPECT_NE(why.find("not probabilities"), std::string::npos) << "[" << why << "]";
}
TEST(NetworkForward, FlowPicArchMatchesReference) {
  // R=151: "same" padding 9 (4 left, 5 right), conv1 31, pool 15, conv2 2, pool 1.
  check_against_reference(Arch::kFlowPic, 151, 4, 4, 3);
}
TEST(NetworkForward, FlowPicArchAsymmetricPaddingMatchesReference) {
  // R=198: conv1 40 (padding 7: 3 left, 4 right), pool 20, conv2 3, pool 1.
  ASSERT_NE(arch_geometry(Arch::kFlowPic, 198).conv1.pad_l, arch_geometry(Arch::kFlowPic, 198).conv1.pad_r);
  check_against_reference(Arch::kFlowPic, 198, 3, 2, 2);
}

TEST(NetworkForward, BatchSizeDoesNotChangeResults) {
  auto m = model_with_biases(Arch::kLeNet, 32, 4, 3);
  Network net(m, 64, 1);
  auto pics = random_pictures(64, 32, 5);
  std::vector<float> all(64 * 4), one(4), some(37 * 4);
  net.classify(pics.data(), 64, all.data());
  net.classify(pics.data(), 37, some.data());
  for (int i = 0; i < 37 * 4; ++i) EXPECT_NEAR(some[i], all[i], 1e-6);
  for (int k : {0, 5, 63}) {
    net.classify(pics.data() + static_cast<size_t>(k) * 32 * 32, 1, one.data());
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(one[c], all[static_cast<size_t>(k) * 4 + c], 1e-6);
  }
}

TEST(NetworkForward, AppliesTheModelTemperatureAndItSurvivesTheFile) {
  auto m = model_with_biases(Arch::kLeNet, 32, 4, 3);
  auto pics = random_pictures(8, 32, 6);
  std::vector<float> plain(8 * 4), tempered(8 * 4);
  Network(m, 8, 1).classify(pics.data(), 8, plain.data());
  m->mutable_info().temperature = 3.0;
  auto loaded = Model::from_bytes(m->to_bytes(), "t.fpm");
  EXPECT_EQ(loaded->info().temperature, 3.0);
  Network(loaded, 8, 1).classify(pics.data(), 8, tempered.data());
  // softmax(z / 3) = p^(1/3) renormalised; the class never changes.
  for (int i = 0; i < 8; ++i) {
    double sum = 0;
    for (int c = 0; c < 4; ++c) sum += std::pow(plain[i * 4 + c], 1.0 / 3.0);
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(tempered[i * 4 + c], std::pow(plain[i * 4 + c], 1.0 / 3.0) / sum, 1e-5);
    EXPECT_EQ(std::max_element(plain.begin() + i * 4, plain.begin() + i * 4 + 4) - (plain.begin() + i * 4),
              std::max_element(tempered.begin() + i * 4, tempered.begin() + i * 4 + 4) - (tempered.begin() + i * 4));
  }
  // A file whose temperature is out of range is refused.
  m->mutable_info().temperature = 0.001;
  EXPECT_THROW(Model::from_bytes(m->to_bytes(), "t.fpm"), ModelError);
}

TEST(NetworkForward, NetworkCopiesWeights) {
  auto m = model_with_biases(Arch::kLeNet, 32, 3, 3);
  Network net(m, 4, 1);
  auto pics = random_pictures(4, 32, 5);
  std::vector<float> a(12), b(12);
  net.classify(pics.data(), 4, a.data());
  for (auto& t : m->mutable_tensors()) std::fill(t.data.begin(), t.data.end(), 0.f);
  net.classify(pics.data(), 4, b.data());
  EXPECT_EQ(a, b);
}

TEST(NetworkForward, RefusesMismatchedModel) {
  auto m = Model::create(info_for(Arch::kLeNet, 32, 3), 1);
  m->mutable_tensors()[4].dims = {120, 399};
  m->mutable_tensors()[4].data.resize(120 * 399);
  EXPECT_THROW(Network(m, 4, 1), ModelError);
}

// ---- gradients ----

// Central differences of the mean loss for a sample of every tensor's entries. A step that
// crosses a ReLU or max-pool switch point makes the difference meaningless there; such points
// are recognised by the two one-sided differences disagreeing and skipped (few are allowed).
void gradient_check(Arch arch, int R, int classes, int n, int samples_per_tensor, int channels = 1) {
  auto m = model_with_biases(arch, R, classes, 17, channels);
  TrainOptions opt;
  opt.threads = 1;
  Trainer tr(m, opt, n + 2);  // a padded batch: padding rows must not contribute
  auto pics = random_pictures(n, R, 31, 1.0f, channels);  // dense: no exact max-pool ties
  std::vector<int> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = i % classes;
  std::vector<std::vector<float>> grads;
  const float loss0 = tr.loss_and_gradients(pics.data(), labels.data(), n, &grads);
  ASSERT_TRUE(std::isfinite(loss0));
  ASSERT_EQ(grads.size(), m->tensors().size());
  std::mt19937 rng(99);
  const float eps = 5e-4f;
  for (size_t ti = 0; ti < m->tensors().size(); ++ti) {
    auto& data = m->mutable_tensors()[ti].data;
    ASSERT_EQ(grads[ti].size(), data.size());
    double gmax = 0;
    for (float g : grads[ti]) gmax = std::max(gmax, static_cast<double>(std::abs(g)));
    EXPECT_GT(gmax, 1e-5) << m->tensors()[ti].name << " has an all-zero gradient";
    int checked = 0, skipped = 0;
    for (int s = 0; s < samples_per_tensor; ++s) {
      const size_t k = rng() % data.size();
      const float orig = data[k];
      data[k] = orig + eps;
      const double lp = tr.loss_and_gradients(pics.data(), labels.data(), n, nullptr);
      data[k] = orig - eps;
      const double lm = tr.loss_and_gradients(pics.data(), labels.data(), n, nullptr);
      data[k] = orig;
      const double fwd = (lp - loss0) / eps, bwd = (loss0 - lm) / eps;
      if (std::abs(fwd - bwd) > 0.2 * std::max(std::abs(fwd), std::abs(bwd)) + 2e-3) {
        ++skipped;  // kink inside [orig - eps, orig + eps]
        continue;
      }
      const double fd = (lp - lm) / (2 * eps);
      const double an = grads[ti][k];
      EXPECT_NEAR(an, fd, 2e-3 + 0.05 * std::abs(fd))
          << m->tensors()[ti].name << "[" << k << "] analytic " << an << " numeric " << fd;
      ++checked;
    }
    EXPECT_LE(skipped, samples_per_tensor / 5) << m->tensors()[ti].name;
    EXPECT_GE(checked, samples_per_tensor * 4 / 5) << m->tensors()[ti].name;
  }
}

TEST(TrainerGradients, LeNetEveryLayerMatchesFiniteDifferences) { gradient_check(Arch::kLeNet, 32, 3, 6, 24); }
TEST(TrainerGradients, TwoChannelLeNetMatchesFiniteDifferences) { gradient_check(Arch::kLeNet, 32, 3, 6, 24, 2); }
TEST(TrainerGradients, FlowPicArchMatchesFiniteDifferences) { gradient_check(Arch::kFlowPic, 198, 3, 3, 16); }

}  // namespace
}  // namespace flowpic
