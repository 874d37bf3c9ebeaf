// Model file: round trip and refusal of damaged or mismatched files.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "infer/model.hpp"
#include "infer/network.hpp"

namespace flowpic {
namespace {

ModelInfo lenet_info(int classes = 3) {
  ModelInfo info;
  info.arch = Arch::kLeNet;
  info.name = "unit";
  for (int c = 0; c < classes; ++c) info.classes.push_back("class" + std::to_string(c));
  info.training = {{"epochs", 3}, {"seed", 7}, {"data", "synthetic"}};
  return info;
}

std::string expect_refused(const std::string& bytes) {
  try {
    Model::from_bytes(bytes, "test.fpm");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "ACCEPTED";
}

uint32_t le32(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}
void set_le32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void fix_crc(std::string& b) {
  const uint32_t c = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(b.data()), b.size() - 4));
  set_le32(b, b.size() - 4, c);
}

TEST(ParameterShapes, LeNet32MatchesMiniFlowPic) {
  auto t = parameter_shapes(Arch::kLeNet, 32, 5);
  ASSERT_EQ(t.size(), 10u);
  EXPECT_EQ(t[0].dims, (std::vector<int64_t>{6, 1, 5, 5}));
  EXPECT_EQ(t[2].dims, (std::vector<int64_t>{16, 6, 5, 5}));
  EXPECT_EQ(t[4].dims, (std::vector<int64_t>{120, 400}));
  EXPECT_EQ(t[6].dims, (std::vector<int64_t>{84, 120}));
  EXPECT_EQ(t[8].dims, (std::vector<int64_t>{5, 84}));
  EXPECT_EQ(t[9].name, "fc3.bias");
}

TEST(ParameterShapes, FlowPic1500MatchesPaper) {
  // 1500 -> conv 10@10x10/5 same -> 300 -> pool 150 -> conv 20@10x10/5 -> 29 -> pool 14.
  auto g = arch_geometry(Arch::kFlowPic, 1500);
  EXPECT_EQ(g.c1, 300);
  EXPECT_EQ(g.conv1.pad_l + g.conv1.pad_r, 5);
  EXPECT_EQ(g.p1, 150);
  EXPECT_EQ(g.c2, 29);
  EXPECT_EQ(g.p2, 14);
  auto t = parameter_shapes(Arch::kFlowPic, 1500, 5);
  ASSERT_EQ(t.size(), 8u);
  EXPECT_EQ(t[4].dims, (std::vector<int64_t>{64, 20 * 14 * 14}));
  EXPECT_EQ(t[6].dims, (std::vector<int64_t>{5, 64}));
}

TEST(ParameterShapes, RefusesTooSmallAndOneClass) {
  EXPECT_THROW(parameter_shapes(Arch::kLeNet, 12, 3), ModelError);
  EXPECT_THROW(parameter_shapes(Arch::kFlowPic, 100, 3), ModelError);
  EXPECT_THROW(parameter_shapes(Arch::kLeNet, 32, 1), ModelError);
  EXPECT_NO_THROW(parameter_shapes(Arch::kLeNet, 16, 2));
  EXPECT_NO_THROW(parameter_shapes(Arch::kFlowPic, 150, 2));
}

TEST(ModelCreate, DeterministicHeUniform) {
  auto a = Model::create(lenet_info(), 42);
  auto b = Model::create(lenet_info(), 42);
  auto c = Model::create(lenet_info(), 43);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  bool differs = false;
  for (size_t i = 0; i < a->tensors().size(); ++i) {
    EXPECT_EQ(a->tensors()[i].data, b->tensors()[i].data) << a->tensors()[i].name;
    differs |= a->tensors()[i].data != c->tensors()[i].data;
  }
  EXPECT_TRUE(differs);
  // conv1: fan_in 25, bound sqrt(6/25) ~ 0.49; the values fill the range, biases start at 0.
  const auto& w = a->tensors()[0].data;
  const float bound = std::sqrt(6.f / 25.f);
  float lo = 1, hi = -1;
  for (float v : w) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.5f * bound);
  EXPECT_GT(hi, 0.5f * bound);
  for (float v : a->tensors()[1].data) EXPECT_EQ(v, 0.f);
}

TEST(ModelFile, RoundTripIsExact) {
  auto m = Model::create(lenet_info(4), 5);
  m->mutable_info().training["accuracy"] = 0.93;
  const std::string path = ::testing::TempDir() + "/roundtrip.fpm";
  m->save(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto l = Model::load(path);
  EXPECT_EQ(l->id(), m->id());
  EXPECT_EQ(l->id().rfind("unit-", 0), 0u);
  EXPECT_EQ(l->id().size(), 5u + 8u);
  EXPECT_EQ(l->info().classes, m->info().classes);
  EXPECT_EQ(l->info().arch, Arch::kLeNet);
  EXPECT_EQ(l->info().training, m->info().training);
  EXPECT_TRUE(l->info().picture.same_pictures(m->info().picture));
  ASSERT_EQ(l->tensors().size(), m->tensors().size());
  for (size_t i = 0; i < l->tensors().size(); ++i) {
    EXPECT_EQ(l->tensors()[i].name, m->tensors()[i].name);
    EXPECT_EQ(l->tensors()[i].dims, m->tensors()[i].dims);
    EXPECT_EQ(0, std::memcmp(l->tensors()[i].data.data(), m->tensors()[i].data.data(),
                             m->tensors()[i].data.size() * sizeof(float)));
  }
  // The same weights give bitwise the same probabilities.
  std::vector<float> pics(8 * 32 * 32);
  std::mt19937 rng(3);
  for (float& v : pics) v = (rng() % 4 == 0) ? static_cast<float>(rng() % 256) / 255.f : 0.f;
  Network a(m, 8, 1), b(l, 8, 1);
  std::vector<float> pa(8 * 4), pb(8 * 4);
  a.classify(pics.data(), 8, pa.data());
  b.classify(pics.data(), 8, pb.data());
  EXPECT_EQ(0, std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)));
  // Saving the loaded model writes the same bytes.
  EXPECT_EQ(l->to_bytes(), m->to_bytes());
}

TEST(ModelFile, LayoutIsAsDocumented) {
  auto m = Model::create(lenet_info(), 1);
  const std::string b = m->to_bytes();
  EXPECT_EQ(b.substr(0, 8), "FLOWPICM");
  EXPECT_EQ(le32(b, 8), 1u);
  const uint32_t hlen = le32(b, 12);
  auto h = nlohmann::json::parse(b.substr(16, hlen));
  EXPECT_EQ(h["arch"], "lenet");
  ASSERT_EQ(h["tensors"].size(), 10u);
  for (const auto& t : h["tensors"]) {
    const uint64_t off = t["offset"];
    EXPECT_EQ(off % 64, 0u);
    EXPECT_GE(off, 16u + hlen);
  }
  const auto& last = h["tensors"].back();
  EXPECT_EQ(last["offset"].get<uint64_t>() + 4 * last["count"].get<uint64_t>() + 4, b.size());
  EXPECT_EQ(le32(b, b.size() - 4),
            static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(b.data()), b.size() - 4)));
  // First value of conv1.weight sits at its offset, little-endian.
  float v;
  std::memcpy(&v, b.data() + h["tensors"][0]["offset"].get<size_t>(), 4);
  EXPECT_EQ(v, m->tensors()[0].data[0]);
}

TEST(ModelFile, RefusesMissingFile) {
  try {
    Model::load("/nonexistent/dir/model.fpm");
    FAIL() << "accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.fpm: cannot open"), std::string::npos) << e.what();
  }
}

TEST(ModelFile, RefusesTruncationAtEveryRegion) {
  const std::string b = Model::create(lenet_info(), 1)->to_bytes();
  std::vector<size_t> cuts;
  for (size_t i = 0; i < 64; ++i) cuts.push_back(i);               // preamble and header start
  for (size_t i = 64; i < b.size(); i += 97) cuts.push_back(i);     // header and data
  for (size_t i = b.size() - 8; i < b.size(); ++i) cuts.push_back(i);  // checksum
  for (size_t cut : cuts) {
    const std::string msg = expect_refused(b.substr(0, cut));
    if (cut == 0) {
      EXPECT_NE(msg.find("not a flowpic model"), std::string::npos) << msg;
    } else {
      EXPECT_NE(msg.find("truncated"), std::string::npos) << "cut at " << cut << ": " << msg;
    }
  }
}

TEST(ModelFile, RefusesAnyFlippedByte) {
  const std::string b = Model::create(lenet_info(), 1)->to_bytes();
  std::mt19937 rng(11);
  std::vector<size_t> at;
  for (size_t i = 0; i < 40; ++i) at.push_back(i);
  for (int k = 0; k < 300; ++k) at.push_back(rng() % b.size());
  for (size_t i = b.size() - 4; i < b.size(); ++i) at.push_back(i);
  for (size_t pos : at) {
    std::string c = b;
    c[pos] = static_cast<char>(c[pos] ^ (1 << (rng() % 8)));
    const std::string msg = expect_refused(c);
    const bool expected = msg.find("checksum mismatch: file corrupt") != std::string::npos ||
                          msg.find("not a flowpic model") != std::string::npos ||
                          msg.find("format version") != std::string::npos ||
                          msg.find("truncated") != std::string::npos;
    EXPECT_TRUE(expected) << "byte " << pos << ": " << msg;
  }
}

TEST(ModelFile, RefusesWrongMagicAndVersion) {
  std::string b = Model::create(lenet_info(), 1)->to_bytes();
  std::string m = b;
  m[0] = 'X';
  EXPECT_NE(expect_refused(m).find("not a flowpic model"), std::string::npos);
  EXPECT_NE(expect_refused("GIF89a....................").find("not a flowpic model"), std::string::npos);
  std::string v = b;
  set_le32(v, 8, 7);
  fix_crc(v);
  EXPECT_NE(expect_refused(v).find("format version 7, this build reads 1"), std::string::npos) << expect_refused(v);
}

// Rewrites the header (keeping the data where it is) and fixes the checksum.
std::string with_header(const std::string& b, const std::function<void(nlohmann::json&)>& edit) {
  const uint32_t hlen = le32(b, 12);
  auto h = nlohmann::json::parse(b.substr(16, hlen));
  edit(h);
  std::string text = h.dump();
  const uint64_t first = h["tensors"][0]["offset"];
  if (16 + text.size() > first) return "";
  text.resize(hlen > text.size() ? hlen : text.size(), ' ');  // pad with JSON whitespace
  std::string out = b.substr(0, 12);
  std::string len(4, '\0');
  set_le32(len, 0, static_cast<uint32_t>(text.size()));
  out += len + text + b.substr(16 + text.size());
  if (out.size() != b.size()) return "";
  fix_crc(out);
  return out;
}

TEST(ModelFile, RefusesInconsistentHeaders) {
  const std::string b = Model::create(lenet_info(3), 1)->to_bytes();
  // The helper itself round-trips.
  auto same = with_header(b, [](nlohmann::json&) {});
  ASSERT_FALSE(same.empty());
  EXPECT_EQ(expect_refused(same), "ACCEPTED");

  auto case_msg = [&](const char* what, const std::function<void(nlohmann::json&)>& edit) {
    const std::string c = with_header(b, edit);
    EXPECT_FALSE(c.empty()) << what;
    return expect_refused(c);
  };
  EXPECT_NE(case_msg("arch", [](auto& h) { h["arch"] = "resnet"; }).find("unknown arch \"resnet\""),
            std::string::npos);
  // Four class names for a 3-class output layer.
  EXPECT_NE(case_msg("classes", [](auto& h) { h["classes"].push_back("extra"); }).find("shape mismatch"),
            std::string::npos);
  // The lenet weights in a flowpic-arch file.
  EXPECT_NE(case_msg("arch2", [](auto& h) { h["arch"] = "flowpic"; }).find("too small"), std::string::npos);
  EXPECT_NE(case_msg("res", [](auto& h) { h["picture"]["resolution"] = 64; }).find("shape mismatch"),
            std::string::npos);
  EXPECT_NE(case_msg("dims", [](auto& h) { h["tensors"][2]["dims"] = {16, 6, 25}; }).find("shape mismatch"),
            std::string::npos);
  EXPECT_NE(case_msg("one class", [](auto& h) { h["classes"] = {"only"}; }).find("at least 2 classes"),
            std::string::npos);
  EXPECT_NE(case_msg("dup", [](auto& h) { h["classes"][1] = h["classes"][0]; }).find("duplicate class"),
            std::string::npos);
  EXPECT_NE(case_msg("picture", [](auto& h) { h["picture"]["resolution"] = 0; }).find("picture config"),
            std::string::npos);
  EXPECT_NE(case_msg("no picture", [](auto& h) { h.erase("picture"); }).find("picture config"), std::string::npos);
  EXPECT_NE(case_msg("offset", [](auto& h) { h["tensors"][3]["offset"] = h["tensors"][2]["offset"]; })
                .find("bad offset"),
            std::string::npos);
}

TEST(ModelFile, RefusesInvalidJsonHeader) {
  std::string b = Model::create(lenet_info(3), 1)->to_bytes();
  b[16] = '[';  // header starts "{" -> "[" : no longer an object / valid JSON
  fix_crc(b);
  const std::string msg = expect_refused(b);
  EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;
}

TEST(ModelFile, RefusesNonFiniteWeights) {
  auto m = Model::create(lenet_info(3), 1);
  m->mutable_tensors()[6].data[17] = std::nanf("");
  const std::string msg = expect_refused(m->to_bytes());
  EXPECT_NE(msg.find("NaN or Inf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fc2.weight"), std::string::npos) << msg;
  m->mutable_tensors()[6].data[17] = INFINITY;
  EXPECT_NE(expect_refused(m->to_bytes()).find("NaN or Inf"), std::string::npos);
  // save() refuses to write what load() would refuse.
  EXPECT_THROW(m->save(::testing::TempDir() + "/bad.fpm"), ModelError);
}

}  // namespace
}  // namespace flowpic
