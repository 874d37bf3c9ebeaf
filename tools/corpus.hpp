// The multi-source corpus: one importer per source format of ../shared/data (read its
// PROVENANCE.md), every window cut by the appliance's own flow table (OfflinePipeline), every
// window keeping its origin, and labels mapped to classes by a versioned ClassMap file.
//
// Origin of a window: WindowDataset::sources[w.source] is "SOURCE/CAPTURE" (e.g.
// "vca/feishu/voice/limit_6KB_1.pcapng", "video-traffic/Youtube/480/480_merged_001.csv.gz#480_7",
// "fgnet/com.skype.raider/1592640000_clear.pcap.json"): the source is the text before the first
// '/', the capture the whole string, so splits can be by capture and by source. The flow is the
// window's FlowKey within its capture (real addresses for captures; for sources without
// addresses, a synthetic key: flow n of the capture is 10.x.y.z <-> 192.0.2.1 with ports 1 (the
// client's side sends: uplink) and 2 (downlink), so both directions of a connection pair up).
//
// Lengths are made comparable as IP total length (the appliance's measure):
//   ndpi, requet, vca     pcap ip.len as parsed
//   ode-flow              its IP lengths as they are
//   video-traffic         |frame length| - 14
//   trafficleak           ip_len (tshark frame length - link header, computed by the provenance step)
//   learnlive             frame length - 14; a 60-byte frame (padded) -> 40 (a bare TCP segment)
//   fgnet                 TCP payload + 52 (IPv4 + TCP with timestamps); coalesced segments over
//                         1448 bytes are split into 1500-byte packets at the same time (GRO/TSO)
// fgnet has no zero-payload packets (pure ACKs were filtered by its authors): see corpus/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flowtable/flow_table.hpp"
#include "tools/class_map.hpp"
#include "tools/dataset.hpp"

namespace flowpic {

struct CorpusOptions {
  std::string data_dir;             // ../shared/data
  const ClassMap* map = nullptr;    // nullptr: the raw labels are the classes (application id)
  FlowTableConfig table;            // window policy (count:20 unless told), capacity, idle timeout
  uint32_t max_captures = 0;        // per source (fgnet: runs per app); 0 = all (tests import a few)
  bool keep_one_way = false;        // bidirectional corpora: keep ODE-Flow and Learn-Live (one direction
                                    // only: their records are all initiator, the responder plane stays empty)
  bool progress = false;
};

struct SourceReport {
  std::string name;
  uint64_t captures = 0;
  uint64_t packets = 0;
  uint64_t windows = 0;             // windows closed with >= min_packets
  uint64_t kept = 0;                // written to the dataset
  uint64_t dropped_by_map = 0;      // class "-" in the map
  uint64_t unmapped = 0;            // raw label with no row in the map
  uint64_t unlabelled = 0;          // flow without a label in the source (e.g. nDPI not DPI)
  std::vector<std::string> warnings;
  double seconds = 0;
  // False when a window's flow key is not a real flow of its capture (ODE-Flow: every window
  // stands alone; Learn-Live: 40-packet chunks of connections): flow-level scores skip them.
  bool flow_identity = true;
};

// The source names, in import order: ode-flow ndpi requet vca video-traffic trafficleak fgnet learnlive.
const std::vector<std::string>& corpus_source_names();
// "vca/feishu/x.pcapng" -> "vca".
std::string source_of_capture(const std::string& capture);

// Imports the named sources (throws std::runtime_error naming the file on unreadable input,
// std::invalid_argument on an unknown source). ODE-Flow's windows are 20-packet count windows and
// Learn-Live's subflows 40 packets: both are imported only for count:20 windows (skipped with a
// warning otherwise).
WindowDataset build_corpus(const std::vector<std::string>& sources, const CorpusOptions& opt,
                           std::vector<SourceReport>* reports);

// Splits one CSV line (RFC 4180 quoting) into fields. Exposed for tests.
std::vector<std::string> split_csv_line(const std::string& line);

}  // namespace flowpic
