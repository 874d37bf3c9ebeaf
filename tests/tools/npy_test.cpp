// The strict .npy reader: hand-built files with known contents, corrupt variants, and the
// real ODE-Flow arrays when ../shared/data is present.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include "tools/npy.hpp"

using namespace flowpic;

namespace {

// A v1 file written byte by byte (independent of npy_bytes): shape (2, 3), values 0.5 .. 5.5.
std::string handmade_v1() {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string f = "\x93NUMPY";
  f += '\x01';
  f += '\x00';
  f += static_cast<char>(header.size());
  f += '\x00';
  f += header;
  for (int i = 0; i < 6; ++i) {
    const double v = i + 0.5;
    f.append(reinterpret_cast<const char*>(&v), 8);
  }
  return f;
}

std::string with_header(const std::string& dict, int values, int version = 1) {
  std::string header = dict + "\n";
  std::string f = "\x93NUMPY";
  f += static_cast<char>(version);
  f += '\x00';
  if (version == 1) {
    f += static_cast<char>(header.size() & 0xff);
    f += static_cast<char>(header.size() >> 8);
  } else {
    const uint32_t n = static_cast<uint32_t>(header.size());
    f.append(reinterpret_cast<const char*>(&n), 4);
  }
  f += header;
  for (int i = 0; i < values; ++i) {
    const double v = i;
    f.append(reinterpret_cast<const char*>(&v), 8);
  }
  return f;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes, "x.npy");
  } catch (const NpyError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Npy, ReadsHandmadeV1) {
  const auto a = parse_npy(handmade_v1(), "hand.npy");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(a.data.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(a.data[i], i + 0.5);
}

TEST(Npy, ReadsV2AndOneDimensionalShapes) {
  const auto a = parse_npy(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", 4, 2), "v2");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{4}));
  EXPECT_DOUBLE_EQ(a.data[3], 3.0);
  // Keys in another order, double quotes, no trailing comma.
  const auto b = parse_npy(with_header("{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f8\"}", 2), "dq");
  EXPECT_EQ(b.size(), 2);
  // A scalar (shape ()) holds one value.
  const auto c = parse_npy(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 1), "scalar");
  EXPECT_EQ(c.size(), 1);
}

TEST(Npy, WriterRoundTrips) {
  std::vector<double> v = {1, -2, 3.25, 1e300, 0, 7};
  const auto a = parse_npy(npy_bytes({3, 1, 2}, v), "rt");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 1, 2}));
  EXPECT_EQ(a.data, v);
}

TEST(Npy, RefusesCorruptFilesWithAReason) {
  const std::string good = handmade_v1();
  std::string bad_magic = good;
  bad_magic[1] = 'X';
  EXPECT_NE(error_of(bad_magic).find("bad magic"), std::string::npos);
  std::string v3 = good;
  v3[6] = 3;
  EXPECT_NE(error_of(v3).find("version 3"), std::string::npos);
  EXPECT_NE(error_of(good.substr(0, 30)).find("truncated in the header"), std::string::npos);
  EXPECT_NE(error_of(good.substr(0, good.size() - 1)).find("data truncated"), std::string::npos);
  EXPECT_NE(error_of(good + "x").find("unexpected bytes"), std::string::npos);
  EXPECT_NE(error_of(with_header("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", 1)).find("'>f8'"),
            std::string::npos);
  EXPECT_NE(error_of(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 1)).find("'<f4'"),
            std::string::npos);
  EXPECT_NE(error_of(with_header("{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }", 1)).find("Fortran"),
            std::string::npos);
  EXPECT_NE(error_of(with_header("{'descr': '<f8', 'shape': (1,), }", 1)).find("fortran_order"), std::string::npos);
  EXPECT_NE(error_of(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", 1)).find("header"),
            std::string::npos);
  EXPECT_NE(error_of(with_header("['descr']", 0)).find("header"), std::string::npos);
  // A hostile shape must not overflow the size computation.
  EXPECT_NE(error_of(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", 1))
                .find("truncated"),
            std::string::npos);
  // Every truncation of a good file is refused, never read out of bounds.
  for (size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(error_of(good.substr(0, n)).empty()) << n;
}

TEST(Npy, MissingFileIsAClearError) {
  try {
    read_npy("/nonexistent/x.npy");
    FAIL();
  } catch (const NpyError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.npy: cannot open"), std::string::npos);
  }
}

TEST(Npy, ReadsRealOdeFlowArrays) {
  const char* repo = std::getenv("FLOWPIC_REPO");
  const std::string dir = std::string(repo ? repo : ".") + "/../shared/data/ode-flow";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " not present";
  const auto x = read_npy(dir + "/ode_const_20_multiclass_reg_x_val.npy");
  const auto y = read_npy(dir + "/ode_const_20_multiclass_reg_y_val.npy");
  ASSERT_EQ(x.shape, (std::vector<int64_t>{1291, 2, 20}));
  ASSERT_EQ(y.shape, (std::vector<int64_t>{1291}));
  // Label counts from PROVENANCE.md: VoIP 290, Video 295, File_Transfer 291, Chat 98, Browsing 317.
  std::map<int, int> counts;
  for (double v : y.data) {
    ASSERT_EQ(v, static_cast<int>(v));
    ++counts[static_cast<int>(v)];
  }
  EXPECT_EQ(counts, (std::map<int, int>{{0, 290}, {1, 295}, {2, 291}, {3, 98}, {4, 317}}));
  // Sizes are whole IP lengths (a few are 0: dpkt's len(ip) of offloaded packets) and times
  // never go backwards within a sample.
  for (int i = 0; i < 1291; ++i) {
    for (int k = 0; k < 20; ++k) {
      const double size = x.data[i * 40 + k];
      EXPECT_TRUE(size >= 0 && size <= 65535 && size == static_cast<int>(size)) << i << " " << k << " " << size;
      if (k > 0) {
        EXPECT_GE(x.data[i * 40 + 20 + k], x.data[i * 40 + 20 + k - 1]) << i;
      }
    }
  }
  const auto xt = read_npy(dir + "/ode_const_20_multiclass_reg_x_train.npy");
  EXPECT_EQ(xt.shape, (std::vector<int64_t>{12922, 2, 20}));
}
