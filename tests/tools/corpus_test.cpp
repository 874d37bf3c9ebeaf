// The corpus: class map (versioned, first glob wins, drops counted), window selection (by
// capture: no capture on both sides of a split), and every importer on real records of
// ../shared/data with answers taken from the provenance step's own tables (sessions.csv,
// traces.csv, flows_labels.csv), not from the importer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "tools/class_map.hpp"
#include "tools/corpus.hpp"
#include "tools/selection.hpp"

using namespace flowpic;

namespace {

std::string data_dir() {
  const char* repo = std::getenv("FLOWPIC_REPO");
  return std::string(repo ? repo : ".") + "/../shared/data";
}
std::string repo_file(const std::string& rel) {
  const char* repo = std::getenv("FLOWPIC_REPO");
  return std::string(repo ? repo : ".") + "/" + rel;
}

#define NEED_DATA(sub)                                                                        \
  do {                                                                                        \
    if (!std::filesystem::exists(data_dir() + "/" + sub)) GTEST_SKIP() << data_dir() << "/" << sub << " not present"; \
  } while (0)

CorpusOptions options(const ClassMap* map, uint32_t max_captures) {
  CorpusOptions o;
  o.data_dir = data_dir();
  o.map = map;
  o.max_captures = max_captures;
  o.table.window.kind = WindowPolicy::Kind::kCount;
  o.table.window.packets = 20;
  o.table.window.min_packets = 20;
  o.table.window.max_windows = 0;
  return o;
}

// Windows per (capture, unidirectional flow key).
std::map<std::pair<uint32_t, std::string>, uint64_t> windows_per_flow(const WindowDataset& ds) {
  std::map<std::pair<uint32_t, std::string>, uint64_t> m;
  for (const auto& w : ds.windows) ++m[{w.source, std::string(reinterpret_cast<const char*>(&w.info.key), sizeof(FlowKey))}];
  return m;
}

std::vector<std::string> csv_rows_where(const std::string& path, const std::string& col, const std::string& value,
                                        std::vector<std::string>* header) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  *header = split_csv_line(line);
  const size_t c = std::find(header->begin(), header->end(), col) - header->begin();
  std::vector<std::string> out;
  while (std::getline(in, line)) {
    const auto f = split_csv_line(line);
    if (c < f.size() && f[c] == value) out.push_back(line);
  }
  return out;
}

std::string field(const std::string& row, const std::vector<std::string>& header, const std::string& col) {
  const auto f = split_csv_line(row);
  return f.at(std::find(header.begin(), header.end(), col) - header.begin());
}

// The sessions.csv row of a video-traffic capture ("video-traffic/Youtube/1080/1080_merged_023.csv.gz#1080_1"
// -> that file's session 1080_1), or "" when there is none.
std::string video_session_row(const WindowDataset& ds, uint32_t c, std::vector<std::string>* header) {
  const std::string name = ds.sources[c].substr(std::string("video-traffic/").size());
  const std::string file = name.substr(0, name.find('#')), session = name.substr(name.find('#') + 1);
  std::string row;
  for (const auto& r : csv_rows_where(data_dir() + "/video-traffic/sessions.csv", "session", session, header))
    if (field(r, *header, "file") == file) row = r;
  return row;
}

}  // namespace

TEST(ClassMap, FirstMatchingGlobWinsAndDashDrops) {
  const auto m = ClassMap::parse(
      "# flowpic class map, version 3\n"
      "source,label,class\n"
      "# comment\n"
      "ndpi,Media/RTP,VoIP\n"
      "ndpi,Media/*,-\n"
      "ndpi,VoIP/*,VoIP\n"
      "ndpi,Web/*,Browsing\r\n"
      "other-src,*,Video\n",
      "t.csv");
  EXPECT_EQ(m.version(), 3);
  EXPECT_EQ(m.classes(), (std::vector<std::string>{"VoIP", "Browsing", "Video"}));
  bool dropped = false;
  EXPECT_EQ(m.map("ndpi", "Media/RTP", &dropped), 0);
  EXPECT_EQ(m.map("ndpi", "Media/YouTube", &dropped), -1);
  EXPECT_TRUE(dropped);
  EXPECT_EQ(m.map("ndpi", "Network/DNS", &dropped), -1);
  EXPECT_FALSE(dropped);  // no row: unmapped, not dropped
  EXPECT_EQ(m.map("ndpi", "Web/HTTP"), 1);
  EXPECT_EQ(m.map("other-src", "anything"), 2);
  EXPECT_EQ(m.map("ndpi2", "Web/HTTP"), -1);
}

TEST(ClassMap, RefusesBadFilesWithTheLine) {
  EXPECT_THROW(ClassMap::parse("source,label,class\nndpi,a,b\n", "t.csv"), ClassMapError);  // no version line
  EXPECT_THROW(ClassMap::parse("# flowpic class map, version x\nsource,label,class\n", "t.csv"), ClassMapError);
  EXPECT_THROW(ClassMap::parse("# flowpic class map, version 1\nsrc,label,class\n", "t.csv"), ClassMapError);
  try {
    ClassMap::parse("# flowpic class map, version 1\nsource,label,class\na,b,A\na,c\n", "t.csv");
    FAIL() << "accepted a row of 2 columns";
  } catch (const ClassMapError& e) {
    EXPECT_NE(std::string(e.what()).find("t.csv:4:"), std::string::npos) << e.what();
  }
}

TEST(ClassMap, TheShippedMapIsVersionedAndCoversEveryFgnetApp) {
  const auto m = ClassMap::load(repo_file("corpus/class-map.csv"));
  EXPECT_GE(m.version(), 2);
  EXPECT_EQ(m.map("ndpi", "Cloud/Dropbox"), 5);  // v2: LAN-sync discovery is background, not a transfer
  EXPECT_EQ(m.classes(), (std::vector<std::string>{"VoIP", "Video", "File_Transfer", "Chat", "Browsing", "other"}));
  EXPECT_EQ(m.map("ndpi", "Media/RTP"), 0);
  EXPECT_EQ(m.map("ndpi", "Web/TLS"), 4);
  EXPECT_EQ(m.map("vca", "share"), -1);
  if (!std::filesystem::exists(data_dir() + "/fgnet/apps.csv")) return;
  std::ifstream in(data_dir() + "/fgnet/apps.csv");
  std::string line;
  std::getline(in, line);
  int apps = 0;
  while (std::getline(in, line)) {
    const auto f = split_csv_line(line);
    ++apps;
    const int c = m.map("fgnet", f[0]);
    ASSERT_GE(c, 0) << f[0];
    EXPECT_EQ(m.classes()[c], f[2]) << f[0];  // class5 column of apps.csv
  }
  EXPECT_EQ(apps, 53);
}

TEST(Corpus, SplitCsvLineHonoursQuotes) {
  EXPECT_EQ(split_csv_line("a,\"b,c\",\"d\"\"e\",\r"), (std::vector<std::string>{"a", "b,c", "d\"e", ""}));
  EXPECT_EQ(split_csv_line(""), (std::vector<std::string>{""}));
}

TEST(Selection, NoCaptureIsOnBothSidesOfAFold) {
  WindowDataset ds;
  ds.classes = {"a", "b"};
  ds.origin = {{"kind", "corpus"}};
  PacketRecord r{0, 100, 1};
  WindowInfo info;
  info.packets = 1;
  for (int c = 0; c < 200; ++c) {
    ds.sources.push_back((c % 2 ? "src1/cap" : "src2/cap") + std::to_string(c));
    for (int w = 0; w < 3; ++w) ds.add(info, &r, 1, w % 2, static_cast<uint32_t>(c));
  }
  for (uint32_t k = 0; k < 5; ++k) {
    WindowSelection train, test;
    train.folds = test.folds = 5;
    train.fold = test.fold = k;
    train.side = WindowSelection::Side::kTrain;
    test.side = WindowSelection::Side::kTest;
    std::set<uint32_t> a, b;
    for (uint32_t w : select_windows(ds, train)) a.insert(ds.windows[w].source);
    for (uint32_t w : select_windows(ds, test)) b.insert(ds.windows[w].source);
    for (uint32_t c : b) EXPECT_FALSE(a.count(c)) << "capture " << ds.sources[c] << " on both sides of fold " << k;
    EXPECT_EQ(a.size() + b.size(), 200u);
    EXPECT_GT(b.size(), 20u);  // 200 captures in 5 folds: none empty
    EXPECT_LT(b.size(), 80u);
  }
  WindowSelection loso;
  loso.exclude_sources = {"src1"};
  for (uint32_t w : select_windows(ds, loso)) EXPECT_EQ(window_source(ds, ds.windows[w].source), "src2");
  WindowSelection cap;
  cap.cap = 10;
  EXPECT_EQ(select_windows(ds, cap).size(), 40u);  // 2 sources x 2 classes x 10
  WindowSelection bad;
  bad.sources = {"nope"};
  EXPECT_THROW(select_windows(ds, bad), std::invalid_argument);
  uint32_t k = 0, n = 0;
  EXPECT_TRUE(parse_fold("2/5", k, n, nullptr));
  EXPECT_EQ(k, 2u);
  EXPECT_EQ(n, 5u);
  EXPECT_FALSE(parse_fold("5/5", k, n, nullptr));
  EXPECT_FALSE(parse_fold("1/x", k, n, nullptr));
  // The fold of a name does not change between runs, builds or machines (FNV-1a 64 + a fixed
  // mix): values from an independent implementation of the documented hash.
  EXPECT_EQ(capture_fold("ode-flow/val", 1000), 472u);
  EXPECT_EQ(capture_fold("ode-flow/train", 3), 0u);
  EXPECT_NE(capture_fold("a", 1u << 30), capture_fold("b", 1u << 30));
}

TEST(CorpusImport, VideoTrafficSessionMatchesSessionsCsv) {
  NEED_DATA("video-traffic/sessions.csv");
  const auto ds = build_corpus({"video-traffic"}, options(nullptr, 3), nullptr);
  ASSERT_EQ(ds.sources.size(), 3u);
  std::vector<std::string> header;
  const auto per_flow = windows_per_flow(ds);
  for (uint32_t c = 0; c < 3; ++c) {
    const std::string& name = ds.sources[c];
    const std::string row = video_session_row(ds, c, &header);
    ASSERT_FALSE(row.empty()) << name;
    const uint64_t up = std::stoull(field(row, header, "pkts_up")), down = std::stoull(field(row, header, "pkts_down"));
    uint64_t up_w = 0, down_w = 0, ip_bytes = 0;
    for (const auto& [key, n] : per_flow) {
      if (key.first != c) continue;
      FlowKey k;
      std::memcpy(&k, key.second.data(), sizeof k);
      (k.sport == 1 ? up_w : down_w) += n;
    }
    for (const auto& w : ds.windows)
      if (w.source == c) ip_bytes += w.info.bytes;
    EXPECT_EQ(up_w, up / 20) << name;
    EXPECT_EQ(down_w, down / 20) << name;
    // IP length = frame length - 14: the windows hold at most the session's frame bytes minus 14 per packet.
    const uint64_t frame = std::stoull(field(row, header, "frame_bytes_up")) + std::stoull(field(row, header, "frame_bytes_down"));
    EXPECT_LE(ip_bytes, frame - 14 * 20 * (up_w + down_w));
    EXPECT_EQ(ds.classes, std::vector<std::string>{"Youtube"});
  }
}

TEST(CorpusImport, TrafficLeakTraceMatchesTracesCsv) {
  NEED_DATA("trafficleak/traces.csv");
  ClassMap map = ClassMap::load(repo_file("corpus/class-map.csv"));
  const auto ds = build_corpus({"trafficleak"}, options(&map, 2), nullptr);
  std::vector<std::string> header;
  const auto rows = csv_rows_where(data_dir() + "/trafficleak/traces.csv", "site", "360.cn", &header);
  ASSERT_GE(rows.size(), 2u);
  ASSERT_EQ(ds.sources, (std::vector<std::string>{"trafficleak/360.cn#0", "trafficleak/360.cn#1"}));
  for (uint32_t t = 0; t < 2; ++t) {
    const uint64_t up = std::stoull(field(rows[t], header, "tunnel_pkts_up")), down = std::stoull(field(rows[t], header, "tunnel_pkts_down"));
    uint64_t n = 0;
    for (const auto& w : ds.windows) n += w.source == t;
    EXPECT_EQ(n, up / 20 + down / 20) << "trace " << t;
  }
  for (const auto& w : ds.windows) EXPECT_EQ(ds.classes[w.label], "Browsing");
}

TEST(CorpusImport, RequetVideoFlowMatchesFlowsLabels) {
  NEED_DATA("requet/flows_labels.csv");
  const auto ds = build_corpus({"requet"}, options(nullptr, 1), nullptr);
  ASSERT_EQ(ds.sources, std::vector<std::string>{"requet/C/PCAP_FILES/baseline_May12_exp_318.pcap"});
  std::vector<std::string> header;
  const auto rows = csv_rows_where(data_dir() + "/requet/flows_labels.csv", "label", "video_youtube_heuristic", &header);
  std::string row;
  for (const auto& r : rows)
    if (field(r, header, "pcap") == "baseline_May12_exp_318.pcap") row = r;
  ASSERT_FALSE(row.empty());
  const int video = std::find(ds.classes.begin(), ds.classes.end(), "video_youtube_heuristic") - ds.classes.begin();
  ASSERT_LT(video, static_cast<int>(ds.classes.size()));
  uint64_t n = 0;
  for (const auto& w : ds.windows) n += w.label == video;
  EXPECT_EQ(n, std::stoull(field(row, header, "pkts_c2s")) / 20 + std::stoull(field(row, header, "pkts_s2c")) / 20);
}

TEST(CorpusImport, VcaMainFlowCarriesTheActivity) {
  NEED_DATA("vca/labels.csv");
  const auto ds = build_corpus({"vca"}, options(nullptr, 1), nullptr);
  ASSERT_EQ(ds.sources.size(), 1u);
  std::vector<std::string> header;
  const std::string file = "vca/" + ds.sources[0].substr(4);
  const auto rows = csv_rows_where(data_dir() + "/vca/labels.csv", "file", file, &header);
  ASSERT_EQ(rows.size(), 1u) << file;
  const uint64_t main_pkts = std::stoull(field(rows[0], header, "main_flow_pkts"));
  uint64_t packets = 0;
  for (const auto& w : ds.windows) {
    EXPECT_EQ(ds.classes[w.label], field(rows[0], header, "activity"));
    packets += w.info.packets;
  }
  // Both directions of the main flow, cut into 20-packet windows: all but the last < 20 of each.
  EXPECT_LE(packets, main_pkts);
  EXPECT_GE(packets + 2 * 19, main_pkts);
}

TEST(CorpusImport, LearnliveSubflowsAreTwoWindowsEach) {
  NEED_DATA("learnlive/labels.csv");
  ClassMap map = ClassMap::load(repo_file("corpus/class-map.csv"));
  std::vector<SourceReport> reps;
  auto opt = options(&map, 1);
  // Some POP3 subflows pause longer than the 30 s default idle timeout (the table would end the
  // flow there, as the appliance does); with an hour, every subflow is exactly two windows.
  opt.table.idle_timeout_ns = 3600 * kNsPerSec;
  const auto ds = build_corpus({"learnlive"}, opt, &reps);
  // First file by name: CHAT_facebookchatgateway (133 subflows of 40 packets; POP3 mail -> other).
  ASSERT_EQ(ds.sources.size(), 1u);
  EXPECT_NE(ds.sources[0].find("CHAT_facebookchatgateway"), std::string::npos);
  EXPECT_EQ(ds.windows.size(), 2u * 133u);
  for (const auto& w : ds.windows) {
    EXPECT_EQ(ds.classes[w.label], "other");
    for (uint32_t i = 0; i < w.info.n_records; ++i) EXPECT_GE(ds.records[w.first_record + i].size, 40);
  }
  EXPECT_EQ(reps.at(0).packets, 133u * 40u);
}

TEST(CorpusImport, FgnetSizesAreIpLengthsAndLabelsTheApp) {
  NEED_DATA("fgnet/D1");
  std::vector<SourceReport> reps;
  const auto ds = build_corpus({"fgnet"}, options(nullptr, 1), &reps);
  ASSERT_GT(ds.windows.size(), 0u);
  // One run (JSON file) of each of the 53 apps; the class is the app package.
  EXPECT_EQ(ds.sources.size(), 53u);
  // Two apps' first runs have no direction of a flow with 20 payload packets: 51 of 53 classes.
  EXPECT_GE(ds.classes.size(), 50u);
  EXPECT_LE(ds.classes.size(), 53u);
  for (const auto& c : ds.classes) EXPECT_NE(c.find('.'), std::string::npos) << c;  // app packages
  EXPECT_EQ(ds.sources[0].rfind("fgnet/air.ITVMobilePlayer/", 0), 0u) << ds.sources[0];
  for (const auto& w : ds.windows)
    for (uint32_t i = 0; i < w.info.n_records; ++i) {
      const auto s = ds.records[w.first_record + i].size;
      ASSERT_GE(s, 53);    // payload >= 1 byte + 52
      ASSERT_LE(s, 1500);  // coalesced segments split at 1448 bytes of payload
    }
}

TEST(CorpusImport, OdeFlowKeepsBothSplitsAsCaptures) {
  NEED_DATA("ode-flow");
  ClassMap map = ClassMap::load(repo_file("corpus/class-map.csv"));
  const auto ds = build_corpus({"ode-flow"}, options(&map, 0), nullptr);
  EXPECT_EQ(ds.sources, (std::vector<std::string>{"ode-flow/train", "ode-flow/val"}));
  EXPECT_EQ(ds.windows.size(), 12922u + 1291u);  // PROVENANCE.md counts
  const auto counts = ds.class_counts();
  EXPECT_EQ(counts[0], 3032u + 290u);  // VoIP
  EXPECT_EQ(counts[5], 0u);            // no "other" in ODE-Flow
}

// min_ip_len on ODE-Flow's ready-cut windows: the short packets leave each window, the kept
// ones keep their order and spacing (time from the first kept one), and a window left with fewer
// than 10 packets is not kept; the windows kept are the ones the full import has, thinned.
TEST(CorpusImport, OdeFlowMinIpLenThinsItsWindows) {
  NEED_DATA("ode-flow");
  ClassMap map = ClassMap::load(repo_file("corpus/class-map.csv"));
  const auto all = build_corpus({"ode-flow"}, options(&map, 0), nullptr);
  CorpusOptions o = options(&map, 0);
  o.table.window.min_ip_len = 53;
  const auto thin = build_corpus({"ode-flow"}, o, nullptr);
  EXPECT_EQ(thin.window.min_ip_len, 53u);
  ASSERT_GT(thin.windows.size(), 0u);
  ASSERT_LT(thin.windows.size(), all.windows.size());  // some windows were mostly ACKs
  size_t a = 0;
  for (const auto& w : thin.windows) {
    ASSERT_GE(w.info.n_records, 10u);
    // Find the full window this one was cut from: the same label and, once the short packets
    // are left out, the same sizes.
    bool found = false;
    for (; a < all.windows.size() && !found; ++a) {
      const auto& f = all.windows[a];
      if (f.label != w.label) continue;
      std::vector<PacketRecord> kept;
      for (uint32_t i = 0; i < f.info.n_records; ++i)
        if (all.records[f.first_record + i].size >= 53) kept.push_back(all.records[f.first_record + i]);
      if (kept.size() != w.info.n_records) continue;
      found = true;
      for (uint32_t i = 0; i < w.info.n_records; ++i) {
        const auto& r = thin.records[w.first_record + i];
        EXPECT_EQ(r.size, kept[i].size);
        EXPECT_EQ(r.t_us, kept[i].t_us - kept[0].t_us);
      }
    }
    ASSERT_TRUE(found) << "a thinned window with no full window behind it";
  }
}

// Bidirectional windows: a playback session's uplink and downlink are one connection, so
// the session gives (up + down) / 20 windows (not up / 20 + down / 20), every window marked
// by direction, and its key is the one of the session's first packet.
TEST(CorpusImport, BidirectionalVideoSessionIsOneConnectionWithBothDirections) {
  NEED_DATA("video-traffic/sessions.csv");
  CorpusOptions o = options(nullptr, 3);
  o.table.window.bidirectional = true;
  const auto ds = build_corpus({"video-traffic"}, o, nullptr);
  ASSERT_EQ(ds.sources.size(), 3u);
  EXPECT_TRUE(ds.window.bidirectional);
  std::vector<std::string> header;
  for (uint32_t c = 0; c < 3; ++c) {
    const std::string& name = ds.sources[c];
    const std::string row = video_session_row(ds, c, &header);
    ASSERT_FALSE(row.empty()) << name;
    const uint64_t up = std::stoull(field(row, header, "pkts_up")), down = std::stoull(field(row, header, "pkts_down"));
    uint64_t windows = 0, fwd = 0, rev = 0, mixed = 0;
    std::set<std::string> keys;
    for (const auto& w : ds.windows) {
      if (w.source != c) continue;
      ++windows;
      keys.insert(to_string(w.info.key));
      uint64_t f = 0, r = 0;
      for (uint32_t i = 0; i < w.info.n_records; ++i) (ds.records_of(w)[i].reverse ? r : f) += 1;
      fwd += f;
      rev += r;
      mixed += f > 0 && r > 0;
    }
    EXPECT_EQ(windows, (up + down) / 20) << name;
    EXPECT_EQ(keys.size(), 1u) << name;  // one connection
    EXPECT_EQ(fwd + rev, 20 * windows);
    EXPECT_LE(std::min(fwd, rev), std::min(up, down)) << name;
    EXPECT_GT(rev, 0u) << name;
    EXPECT_GT(2 * mixed, windows) << name << ": most windows of a playback hold both directions";
  }
}

TEST(CorpusImport, OneWaySourcesAreSkippedForBidirectionalWindowsUnlessKept) {
  NEED_DATA("ode-flow");
  ClassMap map = ClassMap::load(repo_file("corpus/class-map.csv"));
  CorpusOptions o = options(&map, 0);
  o.table.window.bidirectional = true;
  std::vector<SourceReport> reps;
  const auto skipped = build_corpus({"ode-flow"}, o, &reps);
  EXPECT_EQ(skipped.windows.size(), 0u);
  ASSERT_EQ(reps.size(), 1u);
  ASSERT_FALSE(reps[0].warnings.empty());
  EXPECT_NE(reps[0].warnings[0].find("bidirectional"), std::string::npos) << reps[0].warnings[0];
  o.keep_one_way = true;
  const auto kept = build_corpus({"ode-flow"}, o, nullptr);
  EXPECT_EQ(kept.windows.size(), 12922u + 1291u);
  for (const auto& r : kept.records) ASSERT_EQ(r.reverse, 0);  // the responder plane stays empty
}

TEST(CorpusImport, UnknownSourceIsRefused) {
  EXPECT_THROW(build_corpus({"nope"}, options(nullptr, 1), nullptr), std::invalid_argument);
}
