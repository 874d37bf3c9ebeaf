// Labelled windows from captures: PcapReader -> packet_step -> FlowTable (the appliance's
// code, time = capture timestamps) -> windows, labelled per flow from nDPI's CSV or per capture.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/dataset.hpp"
#include "packet/parse.hpp"
#include "tools/labels.hpp"

namespace flowpic {

struct PcapDatasetOptions {
  FlowTableConfig table;                  // window policy (with min_packets), capacity, idle timeout
  const LabelIndex* labels = nullptr;     // per-flow labels, or
  std::string per_pcap_label;             // one label for every flow of every capture
  bool progress = true;
};

struct PcapDatasetReport {
  uint64_t pcaps = 0, packets = 0;
  uint64_t windows = 0;                   // windows closed that qualified (>= min_packets)
  uint64_t windows_unlabelled = 0;        // skipped: flow not in the labels
  uint64_t pcaps_without_labels = 0;      // captures with no row in the labels (all their windows unlabelled)
  uint64_t windows_too_small = 0;
  std::vector<std::string> warnings;      // unreadable / corrupt captures, unsupported links
  ParseCounters parse;
  double seconds = 0;                     // reading + windowing, all captures
  double packets_per_second() const { return seconds > 0 ? static_cast<double>(packets) / seconds : 0; }
};

// Class names are the labels seen, sorted. Throws std::runtime_error only for a bad table config;
// captures that cannot be read are reported in report.warnings and skipped.
WindowDataset build_pcap_dataset(const std::vector<std::string>& pcaps, const PcapDatasetOptions& opt,
                           PcapDatasetReport* report);

// Capture files in a directory (*.pcap, *.pcapng, *.cap), sorted by name.
std::vector<std::string> list_captures(const std::string& dir);

}  // namespace flowpic
