// The TBB batch builder must give exactly the pictures of the serial builder.
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "picbuilder/batch.hpp"

namespace flowpic {
namespace {

struct RandomWindows {
  std::vector<Window> windows;
  std::vector<WindowRef> refs;
};

// Seeded windows of 1..400 records (both the sparse and the dense normalisation paths),
// with block offsets, jumbo sizes, weights and times past the window end.
RandomWindows make_windows(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  RandomWindows w;
  w.windows.resize(n);
  for (auto& win : w.windows) {
    const uint32_t records = 1 + rng() % (rng() % 4 == 0 ? 400 : 40);
    win.info.start_ns = 1000 * kNsPerSec;
    win.info.first_ns = win.info.start_ns + (rng() % 3) * 100 * kNsPerMs;
    uint32_t t = 0;
    for (uint32_t i = 0; i < records; ++i) {
      t += rng() % 200000;
      win.records.push_back({t, static_cast<uint16_t>(rng() % 1700), static_cast<uint16_t>(rng() % 8 == 0 ? 1 + rng() % 300 : 1)});
    }
    win.info.n_records = records;
  }
  for (auto& win : w.windows) w.refs.push_back({&win.info, win.records.data(), static_cast<uint32_t>(win.records.size())});
  return w;
}

std::vector<float> serial(const PictureConfig& cfg, const std::vector<WindowRef>& refs) {
  const size_t px = picture_floats(cfg);
  std::vector<float> out(refs.size() * px);
  for (size_t i = 0; i < refs.size(); ++i) build_flowpic(cfg, *refs[i].info, refs[i].recs, refs[i].n, out.data() + i * px);
  return out;
}

TEST(BuildBatch, EqualsSerialBitForBit) {
  const RandomWindows w = make_windows(400, 12345);
  int configs = 0;
  for (auto kind : {WindowPolicy::Kind::kCount, WindowPolicy::Kind::kTime})
    for (TimeAxis axis : {TimeAxis::kSpan, TimeAxis::kFixed, TimeAxis::kLog})
      for (uint32_t r : {32u, 64u})
        for (Normalisation norm : {Normalisation::kClipScale, Normalisation::kLog}) {
          PictureConfig cfg;
          cfg.window.kind = kind;
          cfg.time_axis = axis;
          cfg.resolution = r;
          cfg.norm = norm;
          cfg.horizon_s = 2.0;
          const std::vector<float> want = serial(cfg, w.refs);
          std::vector<float> got(want.size(), -1.f);
          build_batch(cfg, w.refs.data(), w.refs.size(), got.data());
          ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
              << "axis " << time_axis_name(axis) << " R " << r;
          ++configs;
        }
  EXPECT_EQ(configs, 24);
  // The pictures are not trivially empty.
  PictureConfig cfg;
  const std::vector<float> want = serial(cfg, w.refs);
  size_t nonzero = 0;
  for (float v : want) nonzero += v != 0.f;
  EXPECT_GT(nonzero, 400u * 5);
}

TEST(BuildBatch, LargePicturesInParallel) {
  const RandomWindows w = make_windows(6, 99);
  PictureConfig cfg;
  cfg.resolution = 1500;
  const std::vector<float> want = serial(cfg, w.refs);
  std::vector<float> got(want.size(), -1.f);
  build_batch(cfg, w.refs.data(), w.refs.size(), got.data());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
}

TEST(PictureBatchTest, FillsAlignedBufferUpToCapacity) {
  const RandomWindows w = make_windows(100, 5);
  PictureConfig cfg;
  PictureBatch batch(cfg, 64);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(batch.data()) % 64, 0u);
  EXPECT_EQ(batch.add(w.refs.data(), 40), 40u);
  EXPECT_EQ(batch.add(w.refs.data() + 40, 60), 24u);  // only room for 24 more
  EXPECT_TRUE(batch.full());
  EXPECT_EQ(batch.add(w.refs.data(), 1), 0u);
  const std::vector<float> want = serial(cfg, std::vector<WindowRef>(w.refs.begin(), w.refs.begin() + 64));
  EXPECT_EQ(std::memcmp(batch.data(), want.data(), want.size() * sizeof(float)), 0);
  batch.clear();
  EXPECT_EQ(batch.size(), 0u);
  EXPECT_EQ(batch.add(w.refs.data() + 99, 1), 1u);
  EXPECT_EQ(std::memcmp(batch.picture(0), serial(cfg, {w.refs[99]}).data(), 32 * 32 * sizeof(float)), 0);
}

TEST(PictureBatchTest, RefusesBadConfigOrCapacity) {
  PictureConfig bad;
  bad.resolution = 2;
  EXPECT_THROW(PictureBatch(bad, 8), std::invalid_argument);
  EXPECT_THROW(PictureBatch(PictureConfig{}, 0), std::invalid_argument);
}

}  // namespace
}  // namespace flowpic
