// PNG rendering: valid files of the expected shape, orientation of the size axis, and
// clean refusals.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <cairo.h>
#include <gtest/gtest.h>

#include "picbuilder/render.hpp"

namespace flowpic {
namespace {

std::string tmp_png(const std::string& name) { return testing::TempDir() + "flowpic_render_" + name + ".png"; }

using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;

// Checks the PNG signature, then decodes the file with cairo.
Surface read_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char sig[8] = {};
  f.read(sig, 8);
  EXPECT_EQ(std::string(sig, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << path;
  Surface s(cairo_image_surface_create_from_png(path.c_str()), cairo_surface_destroy);
  EXPECT_EQ(cairo_surface_status(s.get()), CAIRO_STATUS_SUCCESS) << path;
  return s;
}

struct Blob {
  size_t count = 0;
  double cx = 0, cy = 0;
};

// Pixels of exactly colour rgb and their centroid.
Blob find_colour(cairo_surface_t* s, const uint8_t rgb[3]) {
  Blob b;
  const int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const uint32_t p = *reinterpret_cast<const uint32_t*>(data + y * stride + x * 4);
      if (((p >> 16) & 0xff) == rgb[0] && ((p >> 8) & 0xff) == rgb[1] && (p & 0xff) == rgb[2]) {
        ++b.count;
        b.cx += x;
        b.cy += y;
      }
    }
  if (b.count) {
    b.cx /= b.count;
    b.cy /= b.count;
  }
  return b;
}

TEST(Colormap, RunsFromDarkPurpleToYellow) {
  uint8_t lo[3], hi[3], mid[3];
  flowpic_colormap(0.f, lo);
  flowpic_colormap(1.f, hi);
  flowpic_colormap(0.5f, mid);
  EXPECT_LT(lo[0] + lo[1] + lo[2], mid[0] + mid[1] + mid[2]);
  EXPECT_LT(mid[0] + mid[1] + mid[2], hi[0] + hi[1] + hi[2]);
  EXPECT_GT(hi[0], 200);
  EXPECT_GT(hi[1], 200);  // yellow
  uint8_t over[3];
  flowpic_colormap(7.f, over);  // clamped
  EXPECT_EQ(std::vector<uint8_t>(over, over + 3), std::vector<uint8_t>(hi, hi + 3));
}

TEST(RenderFlowPic, WritesPngWithSmallSizesAtTheBottom) {
  const uint32_t R = 32, scale = 16;
  uint8_t hot[3];
  flowpic_colormap(1.f, hot);
  // One hot bin at (time 0, size 0), then at (last time, top size).
  std::vector<float> low(R * R, 0.f), high(R * R, 0.f);
  low[0] = 1.f;
  high[(R - 1) * R + (R - 1)] = 1.f;
  std::string err;
  ASSERT_TRUE(write_flowpic_png(tmp_png("low"), low.data(), R, "low", scale, &err)) << err;
  ASSERT_TRUE(write_flowpic_png(tmp_png("high"), high.data(), R, "high", scale, &err)) << err;
  Surface a = read_png(tmp_png("low")), b = read_png(tmp_png("high"));
  EXPECT_GE(cairo_image_surface_get_width(a.get()), static_cast<int>(R * scale));
  EXPECT_GE(cairo_image_surface_get_height(a.get()), static_cast<int>(R * scale));
  EXPECT_LT(cairo_image_surface_get_width(a.get()), static_cast<int>(R * scale) + 300);
  EXPECT_EQ(cairo_image_surface_get_width(a.get()), cairo_image_surface_get_width(b.get()));
  const Blob la = find_colour(a.get(), hot), hb = find_colour(b.get(), hot);
  // The hot bin is a scale x scale square (plus the top row of the colour bar).
  EXPECT_GE(la.count, size_t{scale * scale});
  EXPECT_LE(la.count, size_t{scale * scale + 20});
  EXPECT_EQ(la.count, hb.count);
  EXPECT_LT(la.cx, hb.cx);  // time runs left to right
  EXPECT_GT(la.cy, hb.cy);  // size 0 at the bottom (image y grows downwards)
}

TEST(RenderFlowPic, AutoScaleAndLargeResolution) {
  std::vector<float> pic(32 * 32, 0.f);
  pic[5 * 32 + 3] = 0.2f;
  PictureConfig cfg;
  std::string err;
  ASSERT_TRUE(write_flowpic_png(tmp_png("auto"), pic.data(), 32, "auto", 0, &err, &cfg)) << err;
  Surface s = read_png(tmp_png("auto"));
  EXPECT_GE(cairo_image_surface_get_width(s.get()), 512);  // 32x32 blown up to be visible

  std::vector<float> big(1500 * 1500, 0.f);
  big[1499 * 1500 + 1499] = 1.f;
  ASSERT_TRUE(write_flowpic_png(tmp_png("big"), big.data(), 1500, "R=1500", 0, &err)) << err;
  Surface t = read_png(tmp_png("big"));
  EXPECT_GE(cairo_image_surface_get_height(t.get()), 1500);
}

TEST(RenderFlowPic, RefusesBadArgumentsAndUnwritablePaths) {
  std::vector<float> pic(32 * 32, 0.f);
  std::string err;
  EXPECT_FALSE(write_flowpic_png("/nonexistent-dir/x.png", pic.data(), 32, "t", 0, &err));
  EXPECT_NE(err.find("/nonexistent-dir/x.png"), std::string::npos) << err;
  err.clear();
  EXPECT_FALSE(write_flowpic_png(tmp_png("null"), nullptr, 32, "t", 0, &err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(write_flowpic_png(tmp_png("r0"), pic.data(), 0, "t"));
  EXPECT_FALSE(write_flowpic_png(tmp_png("huge"), pic.data(), 32, "t", 1000, &err));
}

TEST(RenderGrid, LaysOutColumnsAndRows) {
  const uint32_t R = 32;
  std::vector<float> pics(6 * R * R, 0.f);
  for (int i = 0; i < 6; ++i) pics[i * R * R + i * 33] = 0.5f;
  std::vector<std::string> titles = {"VoIP", "Video", "File", "Chat", "Browsing", "window 6"};
  std::string err;
  ASSERT_TRUE(write_flowpic_grid_png(tmp_png("wide"), pics.data(), 6, R, titles, 3, &err)) << err;
  ASSERT_TRUE(write_flowpic_grid_png(tmp_png("tall"), pics.data(), 6, R, titles, 1, &err)) << err;
  Surface wide = read_png(tmp_png("wide")), tall = read_png(tmp_png("tall"));
  const int ww = cairo_image_surface_get_width(wide.get()), wh = cairo_image_surface_get_height(wide.get());
  const int tw = cairo_image_surface_get_width(tall.get()), th = cairo_image_surface_get_height(tall.get());
  EXPECT_GT(ww, wh);        // 3 columns x 2 rows
  EXPECT_GT(th, 4 * tw);    // 1 column x 6 rows
  EXPECT_NEAR(ww, 3 * tw, tw * 0.1);
  EXPECT_NEAR(th, 3 * wh, wh * 0.2);
}

TEST(RenderGrid, RefusesMismatchedTitlesAndUnwritablePath) {
  std::vector<float> pics(2 * 32 * 32, 0.f);
  std::string err;
  EXPECT_FALSE(write_flowpic_grid_png(tmp_png("t"), pics.data(), 2, 32, {"only one"}, 0, &err));
  EXPECT_NE(err.find("titles"), std::string::npos) << err;
  EXPECT_FALSE(write_flowpic_grid_png(tmp_png("t"), pics.data(), 0, 32, {}, 0, &err));
  EXPECT_FALSE(write_flowpic_grid_png("/nonexistent-dir/g.png", pics.data(), 2, 32, {}, 0, &err));
  EXPECT_NE(err.find("cannot write"), std::string::npos) << err;
}

TEST(RenderConfusion, WritesPngThatGrowsWithClasses) {
  std::vector<std::vector<uint64_t>> three = {{50, 3, 0}, {4, 40, 6}, {0, 0, 0}};
  std::string err;
  ASSERT_TRUE(write_confusion_png(tmp_png("cm3"), three, {"VoIP", "Video", "Chat"}, "3 classes", &err)) << err;
  std::vector<std::vector<uint64_t>> ten(10, std::vector<uint64_t>(10, 7));
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("class" + std::to_string(i));
  ASSERT_TRUE(write_confusion_png(tmp_png("cm10"), ten, names, "10 classes", &err)) << err;
  Surface a = read_png(tmp_png("cm3")), b = read_png(tmp_png("cm10"));
  EXPECT_GT(cairo_image_surface_get_width(b.get()), cairo_image_surface_get_width(a.get()) + 6 * 60);
  EXPECT_GT(cairo_image_surface_get_height(b.get()), cairo_image_surface_get_height(a.get()) + 6 * 60);
}

TEST(RenderConfusion, RefusesMalformedMatrixAndUnwritablePath) {
  std::string err;
  EXPECT_FALSE(write_confusion_png(tmp_png("bad"), {{1, 2}, {3}}, {"a", "b"}, "t", &err));
  EXPECT_NE(err.find("columns"), std::string::npos) << err;
  EXPECT_FALSE(write_confusion_png(tmp_png("bad"), {{1, 2}}, {"a", "b"}, "t", &err));
  EXPECT_NE(err.find("rows"), std::string::npos) << err;
  EXPECT_FALSE(write_confusion_png(tmp_png("bad"), {}, {}, "t", &err));
  EXPECT_FALSE(write_confusion_png("/nonexistent-dir/cm.png", {{1}}, {"a"}, "t", &err));
  EXPECT_NE(err.find("/nonexistent-dir/cm.png"), std::string::npos) << err;
}

uint32_t pixel(cairo_surface_t* s, int x, int y) {
  const unsigned char* data = cairo_image_surface_get_data(s);
  return *reinterpret_cast<const uint32_t*>(data + y * cairo_image_surface_get_stride(s) + x * 4) & 0xffffff;
}

TEST(RenderReliability, BarsReachTheBinAccuracyAndEmptyBinsStayBlank) {
  // Plot 360 px square at (64, 44): bin 9 of 10 (x 388..424) holds accuracy 0.5, so its bar runs
  // from y = 44 + 180 = 224 down to 404; bin 0 is empty.
  std::vector<ReliabilityBin> bins(10);
  bins[9] = {0.95, 0.5, 100};
  bins[4] = {0.45, 0.45, 10};
  std::string err;
  ASSERT_TRUE(write_reliability_png(tmp_png("rel"), bins, "ECE 0.225", &err)) << err;
  Surface s = read_png(tmp_png("rel"));
  ASSERT_EQ(cairo_image_surface_get_width(s.get()), 448);
  ASSERT_EQ(cairo_image_surface_get_height(s.get()), 460);
  const int x9 = 64 + 9 * 36 + 8;  // inside the bar, off its centre (the red gap line)
  EXPECT_NE(pixel(s.get(), x9, 300), 0xffffffu);  // inside the bar
  EXPECT_EQ(pixel(s.get(), x9, 150), 0xffffffu);  // above it
  EXPECT_EQ(pixel(s.get(), 64 + 18 + 8, 380), 0xffffffu);  // empty bin 0
  EXPECT_FALSE(write_reliability_png(tmp_png("rel2"), {}, "t", &err));
  EXPECT_FALSE(write_reliability_png("/nonexistent-dir/r.png", bins, "t", &err));
}

}  // namespace
}  // namespace flowpic
