// WindowDataset files: round trip, and refusal of truncated, corrupted and foreign files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "tools/dataset.hpp"

using namespace flowpic;

namespace {

WindowDataset sample() {
  WindowDataset ds;
  ds.classes = {"VoIP", "Video", "Chat"};
  ds.sources = {"a.pcap", "b.pcap"};
  ds.window.kind = WindowPolicy::Kind::kTime;
  ds.window.length_ns = 15 * kNsPerSec;
  ds.origin = {{"kind", "test"}};
  for (uint32_t w = 0; w < 5; ++w) {
    WindowInfo info;
    info.key.family = 4;
    info.key.proto = 17;
    info.key.src[0] = 10;
    info.key.src[3] = static_cast<uint8_t>(w);
    info.key.sport = static_cast<uint16_t>(1000 + w);
    info.key.dport = 53;
    info.start_ns = 1'700'000'000ull * kNsPerSec + w;
    info.end_ns = info.start_ns + 15 * kNsPerSec;
    info.first_ns = info.start_ns + 7;
    info.last_ns = info.start_ns + 9'000;
    info.index = w;
    info.reason = w % 2 ? CloseReason::kTime : CloseReason::kFlush;
    std::vector<PacketRecord> recs;
    for (uint32_t i = 0; i < 3 + w; ++i) recs.push_back({i * 100, static_cast<uint16_t>(60 + i), 1});
    info.packets = static_cast<uint32_t>(recs.size());
    info.bytes = 1234 + w;
    ds.add(info, recs.data(), static_cast<uint32_t>(recs.size()), static_cast<int32_t>(w % 3), w % 2);
  }
  return ds;
}

std::string error_of(const std::string& bytes) {
  try {
    dataset_from_bytes(bytes, "d.fpds");
  } catch (const DatasetError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(WindowDataset, RoundTripsEveryField) {
  const WindowDataset a = sample();
  const std::string path = testing::TempDir() + "/rt-" + std::to_string(getpid()) + ".fpds";
  save_dataset(a, path);
  ASSERT_TRUE(looks_like_dataset(path));
  const WindowDataset b = load_dataset(path);
  EXPECT_EQ(b.classes, a.classes);
  EXPECT_EQ(b.sources, a.sources);
  EXPECT_EQ(b.window.kind, a.window.kind);
  EXPECT_EQ(b.window.length_ns, a.window.length_ns);
  EXPECT_EQ(b.origin, a.origin);
  ASSERT_EQ(b.windows.size(), a.windows.size());
  ASSERT_EQ(b.records.size(), a.records.size());
  for (size_t i = 0; i < a.windows.size(); ++i) {
    const auto &x = a.windows[i].info, &y = b.windows[i].info;
    EXPECT_EQ(x.key, y.key);
    EXPECT_EQ(x.start_ns, y.start_ns);
    EXPECT_EQ(x.end_ns, y.end_ns);
    EXPECT_EQ(x.first_ns, y.first_ns);
    EXPECT_EQ(x.last_ns, y.last_ns);
    EXPECT_EQ(x.bytes, y.bytes);
    EXPECT_EQ(x.packets, y.packets);
    EXPECT_EQ(x.index, y.index);
    EXPECT_EQ(x.n_records, y.n_records);
    EXPECT_EQ(x.reason, y.reason);
    EXPECT_EQ(a.windows[i].label, b.windows[i].label);
    EXPECT_EQ(a.windows[i].source, b.windows[i].source);
    EXPECT_EQ(a.windows[i].first_record, b.windows[i].first_record);
  }
  for (size_t i = 0; i < a.records.size(); ++i) {
    EXPECT_EQ(a.records[i].t_us, b.records[i].t_us);
    EXPECT_EQ(a.records[i].size, b.records[i].size);
    EXPECT_EQ(a.records[i].weight, b.records[i].weight);
  }
  const auto h = read_dataset_header(path);
  EXPECT_EQ(h["counts"]["windows"], 5);
  EXPECT_EQ(h["counts"]["per_class"]["VoIP"], 2);
  std::remove(path.c_str());
}

TEST(WindowDataset, RefusesEveryTruncation) {
  const std::string bytes = dataset_to_bytes(sample());
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(error_of(bytes.substr(0, n)).empty()) << n;
  EXPECT_FALSE(error_of(bytes + "x").empty());
}

TEST(WindowDataset, RefusesEverySingleByteCorruption) {
  const std::string bytes = dataset_to_bytes(sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string b = bytes;
    b[i] = static_cast<char>(b[i] ^ 0x20);
    EXPECT_FALSE(error_of(b).empty()) << "flip at byte " << i;
  }
  std::string b = bytes;
  b[bytes.size() - 10] ^= 1;  // inside the records: only the checksum can tell
  EXPECT_NE(error_of(b).find("checksum mismatch"), std::string::npos);
}

TEST(WindowDataset, NamesForeignAndNewerFiles) {
  EXPECT_NE(error_of("\x93NUMPY\x01\x00").find("not a flowpic dataset"), std::string::npos);
  std::string b = dataset_to_bytes(sample());
  b[8] = 3;
  EXPECT_NE(error_of(b).find("version 3 is not supported"), std::string::npos);
  try {
    load_dataset("/nonexistent/d.fpds");
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/d.fpds: cannot open"), std::string::npos);
  }
}

TEST(WindowDataset, WindowSpecs) {
  WindowPolicy w;
  std::string err;
  ASSERT_TRUE(parse_window_spec("time:15", w, &err)) << err;
  EXPECT_EQ(w.kind, WindowPolicy::Kind::kTime);
  EXPECT_EQ(w.length_ns, 15 * kNsPerSec);
  EXPECT_EQ(window_spec_string(w), "time:15");
  ASSERT_TRUE(parse_window_spec("time:0.5", w, &err));
  EXPECT_EQ(w.length_ns, kNsPerSec / 2);
  ASSERT_TRUE(parse_window_spec("count:20", w, &err));
  EXPECT_EQ(w.kind, WindowPolicy::Kind::kCount);
  EXPECT_EQ(w.packets, 20u);
  EXPECT_EQ(window_spec_string(w), "count:20");
  for (const char* bad : {"", "time", "time:", "time:0", "time:-1", "time:1x", "count:0", "count:2.5", "size:3"}) {
    EXPECT_FALSE(parse_window_spec(bad, w, &err)) << bad;
    EXPECT_NE(err.find("want time:SECONDS or count:PACKETS"), std::string::npos);
  }
}
