// Known-answer tests of the FlowPic histogram: every expected bin below is worked out by hand
// from the documented formulas (flowpic.hpp).
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "picbuilder/flowpic.hpp"

namespace flowpic {
namespace {

struct Bin {
  uint32_t x, y, count;
};

PictureConfig count_cfg(TimeAxis axis) {
  PictureConfig c;
  c.window.kind = WindowPolicy::Kind::kCount;
  c.window.packets = 20;
  c.time_axis = axis;
  return c;
}

PictureConfig time_cfg(TimeAxis axis, double length_s = 15.0) {
  PictureConfig c;
  c.window.kind = WindowPolicy::Kind::kTime;
  c.window.length_ns = static_cast<TimeNs>(length_s * 1e9);
  c.time_axis = axis;
  return c;
}

// Builds the histogram and checks it holds exactly `bins` (cells not listed are 0).
void expect_bins(const PictureConfig& cfg, const WindowInfo& info, const std::vector<PacketRecord>& recs,
                 const std::vector<Bin>& bins) {
  ASSERT_EQ(cfg.validate(), "");
  const uint32_t R = cfg.resolution;
  std::vector<uint32_t> expected(R * R, 0);
  for (const Bin& b : bins) expected[b.y * R + b.x] += b.count;
  std::vector<uint32_t> got(R * R, 0xdeadbeef);  // all cells must be written
  build_histogram(cfg, info, recs.data(), static_cast<uint32_t>(recs.size()), got.data());
  for (uint32_t y = 0; y < R; ++y)
    for (uint32_t x = 0; x < R; ++x)
      EXPECT_EQ(got[y * R + x], expected[y * R + x]) << "pixel x=" << x << " y=" << y;
}

TEST(FlowPicHistogram, SizeBinsAndTopRowForOversizedPackets) {
  // R = 32, max_size 1500: y = floor(size * 32 / 1501).
  // 0 -> 0; 46 -> 1472/1501 = 0.98 -> 0; 47 -> 1504/1501 -> 1; 750 -> 15.99 -> 15;
  // 751 -> 16.01 -> 16; 1500 -> 31.98 -> 31; 1501 -> 32 -> clamped 31; 9000 (jumbo) -> 31.
  PictureConfig cfg = count_cfg(TimeAxis::kSpan);
  std::vector<PacketRecord> recs = {{0, 0, 1},    {0, 46, 1},   {0, 47, 1},   {0, 750, 1},
                                    {0, 751, 1},  {0, 1500, 1}, {0, 1501, 1}, {0, 9000, 1}};
  // All t = 0: span 0 puts every record in column 0.
  expect_bins(cfg, WindowInfo{}, recs, {{0, 0, 2}, {0, 1, 1}, {0, 15, 1}, {0, 16, 1}, {0, 31, 3}});
}

TEST(FlowPicHistogram, SpanAxisCountWindow) {
  // span = 1000 us (last record); x = floor(t * 32 / 1000):
  // 0 -> 0, 100 -> 3.2 -> 3, 250 -> 8, 968 -> 30.98 -> 30, 1000 -> 32 -> 31 (t == span).
  PictureConfig cfg = count_cfg(TimeAxis::kSpan);
  std::vector<PacketRecord> recs = {{0, 100, 1}, {100, 100, 1}, {250, 1400, 1}, {968, 100, 1}, {1000, 1400, 1}};
  expect_bins(cfg, WindowInfo{}, recs, {{0, 2, 1}, {3, 2, 1}, {8, 29, 1}, {30, 2, 1}, {31, 29, 1}});
}

TEST(FlowPicHistogram, SpanAxisCountWindowOfSpanZero) {
  PictureConfig cfg = count_cfg(TimeAxis::kSpan);
  std::vector<PacketRecord> recs = {{0, 60, 1}, {0, 60, 1}, {0, 1500, 1}};
  expect_bins(cfg, WindowInfo{}, recs, {{0, 1, 2}, {0, 31, 1}});
}

TEST(FlowPicHistogram, SpanAxisTimeWindow) {
  // 15 s window, R = 32: bins of 468750 us. 0 -> 0, 468749 -> 0, 468750 -> 1, 7.5 s -> 16,
  // 14999999 -> 31, 20 s (past the window end) -> clamped 31.
  PictureConfig cfg = time_cfg(TimeAxis::kSpan);
  WindowInfo info;
  info.start_ns = info.first_ns = 5 * kNsPerSec;
  std::vector<PacketRecord> recs = {{0, 100, 1},       {468749, 100, 1},   {468750, 100, 1},
                                    {7500000, 100, 1}, {14999999, 100, 1}, {20000000, 100, 1}};
  expect_bins(cfg, info, recs, {{0, 2, 2}, {1, 2, 1}, {16, 2, 1}, {31, 2, 2}});
}

TEST(FlowPicHistogram, TimeWindowCountsFromBlockStartNotFirstPacket) {
  // The first packet came 0.46875 s (one bin) after the block started: t_us = 0 -> column 1;
  // t_us = 7.03125 s -> 7.5 s into the block -> column 16.
  PictureConfig cfg = time_cfg(TimeAxis::kSpan);
  WindowInfo info;
  info.start_ns = 30 * kNsPerSec;
  info.first_ns = info.start_ns + 468750000;
  std::vector<PacketRecord> recs = {{0, 100, 1}, {7031250, 100, 1}};
  expect_bins(cfg, info, recs, {{1, 2, 1}, {16, 2, 1}});
  // An inconsistent start (first packet before it, or past the window) adds no offset.
  info.first_ns = info.start_ns - 1;
  expect_bins(cfg, info, recs, {{0, 2, 1}, {15, 2, 1}});  // 7031250 * 32 / 15e6 = 15.0
}

TEST(FlowPicHistogram, FixedAxis) {
  // horizon 1 s, R = 32: bins of 31250 us. 31249 -> 0, 31250 -> 1, 0.5 s -> 16, 999999 -> 31,
  // 5 s (past the horizon) -> 31.
  PictureConfig cfg = count_cfg(TimeAxis::kFixed);
  cfg.horizon_s = 1.0;
  std::vector<PacketRecord> recs = {{31249, 100, 1}, {31250, 100, 1}, {500000, 100, 1},
                                    {999999, 100, 1}, {5000000, 100, 1}};
  expect_bins(cfg, WindowInfo{}, recs, {{0, 2, 1}, {1, 2, 1}, {16, 2, 1}, {31, 2, 2}});
  // Time windows use the same axis (with the block offset, 0 here).
  PictureConfig tcfg = time_cfg(TimeAxis::kFixed);
  tcfg.horizon_s = 1.0;
  expect_bins(tcfg, WindowInfo{}, recs, {{0, 2, 1}, {1, 2, 1}, {16, 2, 1}, {31, 2, 2}});
}

TEST(FlowPicHistogram, LogAxis) {
  // tau 1 ms, horizon 1 s, R = 32: x = floor(ln(1 + t/1ms) / ln(1001) * 32), ln(1001) = 6.9088.
  // t = 0 -> 0; 1 ms -> ln 2 = 0.6931 -> 3.21 -> 3; 9 ms -> ln 10 = 2.3026 -> 10.67 -> 10;
  // 99 ms -> ln 100 = 4.6052 -> 21.33 -> 21; 1 s -> 32 -> clamped 31; 2 s -> 31.
  PictureConfig cfg = count_cfg(TimeAxis::kLog);
  cfg.horizon_s = 1.0;
  cfg.log_tau_s = 0.001;
  std::vector<PacketRecord> recs = {{0, 1400, 1},     {1000, 1400, 1},    {9000, 1400, 1},
                                    {99000, 1400, 1}, {1000000, 1400, 1}, {2000000, 1400, 1}};
  expect_bins(cfg, WindowInfo{}, recs, {{0, 29, 1}, {3, 29, 1}, {10, 29, 1}, {21, 29, 1}, {31, 29, 2}});
}

TEST(FlowPicHistogram, WeightsCountAsPackets) {
  // Decimated records stand for `weight` packets; weight 0 is read as 1.
  PictureConfig cfg = count_cfg(TimeAxis::kFixed);
  std::vector<PacketRecord> recs = {{0, 100, 3}, {0, 100, 5}, {500000, 1000, 0}, {500000, 1000, 65535}};
  expect_bins(cfg, WindowInfo{}, recs, {{0, 2, 8}, {16, 21, 65536}});
}

TEST(FlowPicHistogram, OtherResolutionAndMaxSize) {
  // R = 8, max_size 100: y = floor(size * 8 / 101): 12 -> 0.95 -> 0, 13 -> 1.03 -> 1, 100 -> 7, 101 -> 8 -> 7.
  // fixed horizon 0.8 s: bins of 100 ms: 99999 -> 0, 100000 -> 1, 799999 -> 7.
  PictureConfig cfg = count_cfg(TimeAxis::kFixed);
  cfg.resolution = 8;
  cfg.max_size = 100;
  cfg.horizon_s = 0.8;
  std::vector<PacketRecord> recs = {{99999, 12, 1}, {100000, 13, 1}, {799999, 100, 1}, {0, 101, 1}};
  expect_bins(cfg, WindowInfo{}, recs, {{0, 0, 1}, {1, 1, 1}, {7, 7, 1}, {0, 7, 1}});
}

TEST(FlowPicPicture, ClipScaleNormalisationExactValues) {
  PictureConfig cfg = count_cfg(TimeAxis::kFixed);
  ASSERT_EQ(cfg.clip, 255.f);
  // Pixel A (x 0, y 2): 3 packets. Pixel B (x 16, y 2): one record of weight 300 -> clipped to 255.
  std::vector<PacketRecord> recs = {{0, 100, 1}, {0, 100, 1}, {0, 100, 1}, {500000, 100, 300}};
  std::vector<float> pic(32 * 32, -1.f);
  build_flowpic(cfg, WindowInfo{}, recs.data(), 4, pic.data());
  EXPECT_EQ(pic[2 * 32 + 0], 3.f / 255.f);
  EXPECT_EQ(pic[2 * 32 + 16], 1.f);
  EXPECT_EQ(std::count(pic.begin(), pic.end(), 0.f), 32 * 32 - 2);
}

TEST(FlowPicPicture, LogNormalisationExactValues) {
  PictureConfig cfg = count_cfg(TimeAxis::kFixed);
  cfg.norm = Normalisation::kLog;
  std::vector<PacketRecord> recs = {{0, 100, 1}, {0, 100, 1}, {0, 100, 1}, {500000, 100, 1000}};
  std::vector<float> pic(32 * 32, -1.f);
  build_flowpic(cfg, WindowInfo{}, recs.data(), 4, pic.data());
  EXPECT_EQ(pic[2 * 32 + 0], std::log1p(3.f) / std::log1p(255.f));
  EXPECT_EQ(pic[2 * 32 + 16], 1.f);
  EXPECT_EQ(std::count(pic.begin(), pic.end(), 0.f), 32 * 32 - 2);
}

TEST(FlowPicPicture, ManyRecordsTakeTheDensePathWithTheSameValues) {
  // 300 records (> the sparse limit): 290 in one pixel (clipped), 10 in another.
  for (Normalisation norm : {Normalisation::kClipScale, Normalisation::kLog}) {
    PictureConfig cfg = count_cfg(TimeAxis::kFixed);
    cfg.norm = norm;
    std::vector<PacketRecord> recs(300, PacketRecord{0, 1400, 1});
    for (int i = 0; i < 10; ++i) recs[i] = PacketRecord{500000, 100, 1};
    std::vector<float> pic(32 * 32, -1.f);
    build_flowpic(cfg, WindowInfo{}, recs.data(), 300, pic.data());
    const float ten = norm == Normalisation::kClipScale ? 10.f / 255.f : std::log1p(10.f) / std::log1p(255.f);
    EXPECT_EQ(pic[29 * 32 + 0], 1.f);
    EXPECT_EQ(pic[2 * 32 + 16], ten);
    EXPECT_EQ(std::count(pic.begin(), pic.end(), 0.f), 32 * 32 - 2);
  }
}

TEST(FlowPicPicture, EmptyWindowIsAllZero) {
  PictureConfig cfg;
  std::vector<float> pic(32 * 32, 7.f);
  build_flowpic(cfg, WindowInfo{}, nullptr, 0, pic.data());
  EXPECT_EQ(std::count(pic.begin(), pic.end(), 0.f), 32 * 32);
}

TEST(FlowPicPicture, Resolution1500KeepsEveryPacket) {
  for (TimeAxis axis : {TimeAxis::kSpan, TimeAxis::kFixed, TimeAxis::kLog}) {
    PictureConfig cfg = time_cfg(axis, 60.0);
    cfg.resolution = 1500;
    cfg.horizon_s = 60.0;
    std::mt19937 rng(7);
    std::vector<PacketRecord> recs(20000);
    uint64_t packets = 0;
    for (auto& r : recs) {
      r.t_us = static_cast<uint32_t>(rng() % 70000000);  // some past the window end
      r.size = static_cast<uint16_t>(rng() % 9001);      // some jumbo
      r.weight = static_cast<uint16_t>(1 + rng() % 4);
      packets += r.weight;
    }
    std::vector<uint32_t> counts(1500 * 1500);
    build_histogram(cfg, WindowInfo{}, recs.data(), static_cast<uint32_t>(recs.size()), counts.data());
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), uint64_t{0}), packets);
    // The picture is the clipped, scaled histogram, pixel for pixel.
    std::vector<float> pic(1500 * 1500, -1.f);
    build_flowpic(cfg, WindowInfo{}, recs.data(), static_cast<uint32_t>(recs.size()), pic.data());
    size_t mismatches = 0;
    for (size_t i = 0; i < pic.size(); ++i)
      mismatches += pic[i] != std::min(static_cast<float>(counts[i]), 255.f) / 255.f;
    EXPECT_EQ(mismatches, 0u) << time_axis_name(axis);
  }
}

TEST(PictureConfigTest, DefaultsAreValid) { EXPECT_EQ(PictureConfig{}.validate(), ""); }

TEST(PictureConfigTest, RejectsUnusableSettings) {
  auto check = [](auto mutate, const char* words) {
    PictureConfig c;
    mutate(c);
    const std::string err = c.validate();
    EXPECT_NE(err.find(words), std::string::npos) << "got: '" << err << "' expected mention of " << words;
  };
  check([](PictureConfig& c) { c.resolution = 7; }, "resolution");
  check([](PictureConfig& c) { c.resolution = 1501; }, "resolution");
  check([](PictureConfig& c) { c.max_size = 63; }, "max_size");
  check([](PictureConfig& c) { c.horizon_s = 0; }, "horizon_s");
  check([](PictureConfig& c) { c.horizon_s = std::nan(""); }, "horizon_s");
  check([](PictureConfig& c) { c.log_tau_s = -1; }, "log_tau_s");
  check([](PictureConfig& c) { c.clip = 0.5f; }, "clip");
  check([](PictureConfig& c) { c.window.packets = 0; }, "packets");
  check([](PictureConfig& c) { c.window.min_packets = 21; }, "min_packets");
  check([](PictureConfig& c) {
    c.window.kind = WindowPolicy::Kind::kTime;
    c.window.length_ns = 0;
  }, "length");
  check([](PictureConfig& c) { c.time_axis = static_cast<TimeAxis>(9); }, "time_axis");
}

TEST(PictureConfigTest, SamePicturesIgnoresOnlyWhatDoesNotChangeThePicture) {
  PictureConfig a = count_cfg(TimeAxis::kSpan);
  PictureConfig b = a;
  b.window.min_packets = 5;
  b.window.max_windows = 1;
  b.log_tau_s = 0.5;   // unused by kSpan
  b.horizon_s = 9.0;   // unused by kSpan
  b.window.length_ns = 1;  // unused by count windows
  EXPECT_TRUE(a.same_pictures(b));
  b = a;
  b.window.packets = 30;
  EXPECT_FALSE(a.same_pictures(b));
  b = a;
  b.resolution = 64;
  EXPECT_FALSE(a.same_pictures(b));
  b = a;
  b.norm = Normalisation::kLog;
  EXPECT_FALSE(a.same_pictures(b));
  PictureConfig l = count_cfg(TimeAxis::kLog), m = l;
  m.log_tau_s = 0.01;
  EXPECT_FALSE(l.same_pictures(m));
  PictureConfig t = time_cfg(TimeAxis::kSpan, 15), u = time_cfg(TimeAxis::kSpan, 60);
  EXPECT_FALSE(t.same_pictures(u));
}

TEST(PictureConfigJson, RoundTripsEveryField) {
  PictureConfig c;
  c.window.kind = WindowPolicy::Kind::kTime;
  c.window.length_ns = 60 * kNsPerSec;
  c.window.packets = 33;
  c.window.min_packets = 5;
  c.window.max_windows = 1;
  c.resolution = 64;
  c.max_size = 9000;
  c.time_axis = TimeAxis::kFixed;
  c.horizon_s = 2.5;
  c.log_tau_s = 0.002;
  c.clip = 100.f;
  c.norm = Normalisation::kLog;
  nlohmann::json j = c;
  EXPECT_EQ(j["window"]["kind"], "time");
  EXPECT_EQ(j["window"]["length_s"], 60.0);
  EXPECT_EQ(j["time_axis"], "fixed");
  EXPECT_EQ(j["norm"], "log");
  // Through text, as in a model file.
  PictureConfig back = nlohmann::json::parse(j.dump()).get<PictureConfig>();
  EXPECT_EQ(back.window.kind, c.window.kind);
  EXPECT_EQ(back.window.length_ns, c.window.length_ns);
  EXPECT_EQ(back.window.packets, 33u);
  EXPECT_EQ(back.window.min_packets, 5u);
  EXPECT_EQ(back.window.max_windows, 1u);
  EXPECT_EQ(back.resolution, 64u);
  EXPECT_EQ(back.max_size, 9000u);
  EXPECT_EQ(back.time_axis, TimeAxis::kFixed);
  EXPECT_EQ(back.horizon_s, 2.5);
  EXPECT_EQ(back.log_tau_s, 0.002);
  EXPECT_EQ(back.clip, 100.f);
  EXPECT_EQ(back.norm, Normalisation::kLog);
  EXPECT_TRUE(back.same_pictures(c));
  EXPECT_EQ(nlohmann::json(back), j);

  PictureConfig d;  // defaults: count window, log axis, clip-scale
  EXPECT_EQ(nlohmann::json(nlohmann::json(d).get<PictureConfig>()), nlohmann::json(d));
}

TEST(PictureConfigJson, RefusesBadInputWithAClearMessage) {
  const nlohmann::json good = PictureConfig{};
  auto refused = [&](auto mutate, const std::string& words) {
    nlohmann::json j = good;
    mutate(j);
    try {
      (void)j.get<PictureConfig>();
      ADD_FAILURE() << "accepted " << j.dump();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  refused([](nlohmann::json& j) { j.erase("resolution"); }, "missing field 'resolution'");
  refused([](nlohmann::json& j) { j["window"].erase("kind"); }, "missing field 'window.kind'");
  refused([](nlohmann::json& j) { j.erase("window"); }, "missing field 'window'");
  refused([](nlohmann::json& j) { j["resolution"] = "32"; }, "'resolution' must be a non-negative integer");
  refused([](nlohmann::json& j) { j["resolution"] = -32; }, "'resolution' must be a non-negative integer");
  refused([](nlohmann::json& j) { j["resolution"] = 32.5; }, "'resolution' must be a non-negative integer");
  refused([](nlohmann::json& j) { j["resolution"] = 4; }, "resolution must be in [8, 1500]");
  refused([](nlohmann::json& j) { j["max_size"] = 1ull << 40; }, "'max_size' is too large");
  refused([](nlohmann::json& j) { j["time_axis"] = "linear"; }, "time_axis must be");
  refused([](nlohmann::json& j) { j["time_axis"] = 1; }, "'time_axis' must be a string");
  refused([](nlohmann::json& j) { j["norm"] = "max"; }, "norm must be");
  refused([](nlohmann::json& j) { j["window"]["kind"] = "session"; }, "window.kind must be");
  refused([](nlohmann::json& j) { j["window"]["length_s"] = 0; }, "window.length_s");
  refused([](nlohmann::json& j) { j["horizon_s"] = nullptr; }, "'horizon_s' must be a number");
  refused([](nlohmann::json& j) { j["clip"] = 0; }, "clip must be");
  refused([](nlohmann::json& j) { j = nlohmann::json::array({1, 2}); }, "expected a JSON object");
  refused([](nlohmann::json& j) { j["channels"] = 3; }, "channels must be 1 or 2");
  refused([](nlohmann::json& j) { j["channels"] = 2; }, "need bidirectional windows");
  refused([](nlohmann::json& j) { j["window"]["flows"] = "both"; }, "window.flows must be");
}

TEST(PictureConfigJson, BidirectionalTwoChannelsRoundTripAndOldFilesReadAsOneChannel) {
  PictureConfig c;
  c.window.bidirectional = true;
  c.channels = 2;
  ASSERT_EQ(c.validate(), "");
  nlohmann::json j = c;
  EXPECT_EQ(j["window"]["flows"], "bi");
  EXPECT_EQ(j["channels"], 2);
  const PictureConfig back = nlohmann::json::parse(j.dump()).get<PictureConfig>();
  EXPECT_TRUE(back.window.bidirectional);
  EXPECT_EQ(back.channels, 2u);
  EXPECT_TRUE(back.same_pictures(c));
  PictureConfig one = c;
  one.channels = 1;
  EXPECT_FALSE(one.same_pictures(c));
  PictureConfig uni;
  EXPECT_FALSE(uni.same_pictures(one));  // same channels, different flows
  // A model file written before bidirectional windows has neither field.
  nlohmann::json old = PictureConfig{};
  old.erase("channels");
  old["window"].erase("flows");
  const PictureConfig o = old.get<PictureConfig>();
  EXPECT_FALSE(o.window.bidirectional);
  EXPECT_EQ(o.channels, 1u);
}

TEST(PictureConfigJson, MinIpLenRoundTripsChangesThePicturesAndIsAbsentWhenZero) {
  PictureConfig c;
  nlohmann::json zero = c;
  EXPECT_FALSE(zero["window"].contains("min_ip_len"));  // files without it read as 0
  c.window.min_ip_len = 53;
  nlohmann::json j = c;
  EXPECT_EQ(j["window"]["min_ip_len"], 53);
  const PictureConfig back = nlohmann::json::parse(j.dump()).get<PictureConfig>();
  EXPECT_EQ(back.window.min_ip_len, 53u);
  EXPECT_TRUE(back.same_pictures(c));
  EXPECT_FALSE(back.same_pictures(PictureConfig{}));  // other packets in the windows
  j["window"]["min_ip_len"] = 70000;
  EXPECT_THROW(j.get<PictureConfig>(), std::exception);
}

// Two channels: plane 0 is the one-channel picture of the initiator's records, plane 1 of the
// responder's; one channel over a bidirectional window is the picture of all records.
TEST(FlowPicPicture, TwoChannelsSplitTheRecordsByDirection) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    PictureConfig two = count_cfg(TimeAxis::kLog);
    two.window.bidirectional = true;
    two.channels = 2;
    two.clip = 8.f;
    PictureConfig one = two;
    one.channels = 1;
    const uint32_t n = 1 + rng() % (trial % 2 ? 400 : 40);  // sparse and dense paths
    std::vector<PacketRecord> all, fwd, back;
    uint32_t t = 0;
    for (uint32_t i = 0; i < n; ++i) {
      t += rng() % 5000;
      const bool rev = rng() % 2;
      all.emplace_back(t, 40 + rng() % 1460, 1, rev);
      (rev ? back : fwd).push_back(all.back());
    }
    WindowInfo info;
    info.packets = n;
    info.n_records = n;
    const size_t plane = 32 * 32;
    std::vector<float> pic2(picture_floats(two)), pic1(picture_floats(one)), pf(plane), pb(plane);
    ASSERT_EQ(pic2.size(), 2 * plane);
    build_flowpic(two, info, all.data(), n, pic2.data());
    build_flowpic(one, info, all.data(), n, pic1.data());
    // Per-direction references with the same time axis (log: no dependence on the span).
    PictureConfig ref = one;
    ref.window.bidirectional = false;
    build_flowpic(ref, info, fwd.data(), static_cast<uint32_t>(fwd.size()), pf.data());
    build_flowpic(ref, info, back.data(), static_cast<uint32_t>(back.size()), pb.data());
    for (size_t i = 0; i < plane; ++i) {
      ASSERT_EQ(pic2[i], pf[i]) << trial << " " << i;
      ASSERT_EQ(pic2[plane + i], pb[i]) << trial << " " << i;
    }
    std::vector<float> pall(plane);
    build_flowpic(ref, info, all.data(), n, pall.data());
    for (size_t i = 0; i < plane; ++i) ASSERT_EQ(pic1[i], pall[i]);
  }
}

}  // namespace
}  // namespace flowpic
