// End to end: datasets built from shipped captures (tests/data) hold exactly the windows the
// flow-table semantics give, computed here independently from the raw packets; nDPI labels
// join both directions of a flow.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "packet/pcap_reader.hpp"
#include "tools/pcap_dataset.hpp"

using namespace flowpic;

namespace {

std::string data_path(const std::string& name) {
  const char* d = std::getenv("FLOWPIC_TEST_DATA");
  return std::string(d ? d : "tests/data") + "/" + name;
}

struct RefWindow {
  FlowKey key;
  uint32_t index;
  uint32_t packets;
  uint64_t bytes;
  bool operator<(const RefWindow& o) const {
    if (key != o.key) return key < o.key;
    return index < o.index;
  }
};

// The windowing rules of docs/flowtable.md written the plain way: a map of flows, no slots,
// no pools. A flow idle longer than the timeout ends; time windows are blocks of `length`
// from the flow's first packet (index = block number); count windows close every N packets;
// per flow time never goes backwards; windows under min_packets are dropped.
std::vector<RefWindow> reference_windows(const std::string& path, const WindowPolicy& w, TimeNs idle) {
  struct Flow {
    TimeNs first, last, block_start;
    uint32_t index = 0, packets = 0;
    uint64_t bytes = 0;
  };
  std::map<FlowKey, Flow> flows;
  std::vector<RefWindow> out;
  auto close = [&](const FlowKey& k, Flow& f) {
    if (f.packets >= w.min_packets) out.push_back({k, f.index, f.packets, f.bytes});
    f.packets = 0;
    f.bytes = 0;
  };
  PcapReader reader(path);
  RawPacket raw;
  ParsedPacket p;
  while (reader.next(raw)) {
    const ParseResult r = parse_packet(raw.data, raw.caplen, reader.link_type(), p);
    if (r != ParseResult::kOk && r != ParseResult::kOkFragment) continue;
    TimeNs t = raw.ts_ns;
    auto it = flows.find(p.key);
    if (it != flows.end() && t > it->second.last && t - it->second.last > idle) {
      close(p.key, it->second);
      flows.erase(it);
      it = flows.end();
    }
    if (it == flows.end()) it = flows.emplace(p.key, Flow{t, t, t}).first;
    Flow& f = it->second;
    t = std::max(t, f.last);
    if (w.kind == WindowPolicy::Kind::kTime && t >= f.block_start + w.length_ns) {
      close(p.key, f);
      const uint64_t block = (t - f.first) / w.length_ns;
      f.index = static_cast<uint32_t>(block);
      f.block_start = f.first + block * w.length_ns;
    }
    ++f.packets;
    f.bytes += p.ip_len;
    f.last = t;
    if (w.kind == WindowPolicy::Kind::kCount && f.packets == w.packets) {
      close(p.key, f);
      ++f.index;
    }
  }
  for (auto& [k, f] : flows)
    if (f.packets) close(k, f);
  std::sort(out.begin(), out.end());
  return out;
}

void expect_same_windows(const std::string& name, const std::string& spec, TimeNs idle) {
  SCOPED_TRACE(name + " " + spec);
  const std::string path = data_path(name);
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  PcapDatasetOptions opt;
  std::string err;
  ASSERT_TRUE(parse_window_spec(spec, opt.table.window, &err)) << err;
  opt.table.window.min_packets = 10;
  opt.table.idle_timeout_ns = idle;
  opt.per_pcap_label = "x";
  opt.progress = false;
  PcapDatasetReport rep;
  const WindowDataset ds = build_pcap_dataset({path}, opt, &rep);
  const auto want = reference_windows(path, opt.table.window, idle);
  ASSERT_FALSE(want.empty()) << "capture has no qualifying window: the test would prove nothing";
  std::vector<RefWindow> got;
  for (const auto& w : ds.windows) got.push_back({w.info.key, w.info.index, w.info.packets, w.info.bytes});
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(to_string(got[i].key), to_string(want[i].key)) << i;
    EXPECT_EQ(got[i].index, want[i].index) << i;
    EXPECT_EQ(got[i].packets, want[i].packets) << i;
    EXPECT_EQ(got[i].bytes, want[i].bytes) << i;
  }
  // Every window keeps one record per packet here (no decimation below 1024 records) and
  // the record sizes add up to the window's bytes.
  for (const auto& w : ds.windows) {
    ASSERT_EQ(w.info.n_records, w.info.packets);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < w.info.n_records; ++i) bytes += ds.records_of(w)[i].size;
    EXPECT_EQ(bytes, w.info.bytes);
  }
  EXPECT_EQ(rep.windows, got.size());
  EXPECT_EQ(rep.windows_unlabelled, 0u);
}

}  // namespace

TEST(PcapDataset, WindowsMatchTheFlowTableSemantics) {
  for (const char* name : {"wa_voice.pcap", "zoom2.pcap", "stun_wa_call.pcapng"}) {
    expect_same_windows(name, "time:15", 30 * kNsPerSec);
    expect_same_windows(name, "count:20", 30 * kNsPerSec);
    expect_same_windows(name, "time:5", 2 * kNsPerSec);   // short idle timeout: flows end and restart
    expect_same_windows(name, "count:10", 1 * kNsPerSec);
  }
}

TEST(PcapDataset, NdpiLabelsJoinBothDirections) {
  // Real rows of flows_labels.csv for wa_voice.pcap (nDPI's labels at the pinned commit).
  const std::string csv =
      "pcap,flow_idx,l4,src,dir,dst,ndpi_proto_id,ndpi_proto,app,master,category,category_id,confidence,pkts_c2s,"
      "bytes_c2s,pkts_s2c,bytes_s2c,duration_s,ip_owner\n"
      "wa_voice.pcap,2,TCP,192.168.2.12:49355,<->,157.240.20.53:5222,142,WhatsApp,WhatsApp,,Chat,1,DPI,132,0,131,0,0,x\n"
      "wa_voice.pcap,3,UDP,91.252.56.51:32704,<->,192.168.2.12:56328,268,WhatsAppCall,WhatsAppCall,,VoIP,10,DPI,87,0,77,"
      "0,0,x\n";
  const LabelIndex labels(parse_ndpi_labels(csv, "labels.csv"), LabelColumn::kCategory, "DPI");
  PcapDatasetOptions opt;
  opt.table.window.kind = WindowPolicy::Kind::kCount;
  opt.table.window.packets = 20;
  opt.table.window.min_packets = 10;
  opt.labels = &labels;
  opt.progress = false;
  PcapDatasetReport rep;
  const WindowDataset ds = build_pcap_dataset({data_path("wa_voice.pcap")}, opt, &rep);
  ASSERT_EQ(ds.classes, (std::vector<std::string>{"Chat", "VoIP"}));
  // Independent count: the labelled flows' windows in the reference.
  const auto all = reference_windows(data_path("wa_voice.pcap"), opt.table.window, opt.table.idle_timeout_ns);
  std::map<std::string, int> want;
  for (const auto& w : all) {
    const std::string k = to_string(w.key);
    if (k.find("157.240.20.53:5222") != std::string::npos && k.find("192.168.2.12:49355") != std::string::npos) ++want["Chat"];
    if (k.find("91.252.56.51:32704") != std::string::npos && k.find("192.168.2.12:56328") != std::string::npos) ++want["VoIP"];
  }
  std::map<std::string, int> got;
  std::set<std::string> directions;
  for (const auto& w : ds.windows) {
    ++got[ds.classes[w.label]];
    directions.insert(to_string(w.info.key));
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(directions.size(), 4u);  // both directions of both flows
  EXPECT_EQ(rep.windows_unlabelled, all.size() - ds.windows.size());
  EXPECT_GT(rep.windows_unlabelled, 0u);
}

TEST(PcapDataset, UnreadableCapturesAreReportedNotFatal) {
  PcapDatasetOptions opt;
  opt.per_pcap_label = "x";
  opt.progress = false;
  PcapDatasetReport rep;
  const WindowDataset ds =
      build_pcap_dataset({data_path("fuzz-2021-10-13.pcap"), "/nonexistent.pcap", data_path("zoom2.pcap")}, opt, &rep);
  ASSERT_EQ(rep.warnings.size(), 2u);
  EXPECT_NE(rep.warnings[0].find("corrupt"), std::string::npos);
  EXPECT_NE(rep.warnings[1].find("/nonexistent.pcap"), std::string::npos);
  EXPECT_GT(ds.windows.size(), 0u);  // zoom2 still read
}
