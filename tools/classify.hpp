// `flowpic classify`: one capture through the appliance's path (PcapReader -> packet_step ->
// FlowTable with the model's window policy -> flush at the end -> build_batch -> Network) to
// one verdict per classified window, in a deterministic order: by the table time at which the
// window closed, ties by flow key then window index.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flowtable/flow_table.hpp"
#include "infer/model.hpp"
#include "packet/parse.hpp"

namespace flowpic {

class IpfixExporter;

struct ClassifyOptions {
  uint32_t flow_capacity = 1u << 16;
  TimeNs idle_timeout_ns = 30 * kNsPerSec;
  float threshold = 0.f;  // confidence below it: class "unknown"
  int batch = 64;
  int threads = 1;
  bool progress = true;
  // Flow records to an IPFIX collector (flowpicd's exporter; producer 0, started by the caller,
  // which publishes nothing: classify_pcap publishes the model's classes). Null: none.
  IpfixExporter* exporter = nullptr;
  TimeNs active_timeout_ns = 60 * kNsPerSec;
};

struct ClassifyReport {
  uint64_t packets = 0;
  ParseCounters parse;
  uint64_t clock_backwards = 0;
  FlowTableCounters table;
  uint64_t windows_classified = 0;
  uint64_t windows_unknown = 0;                 // below the threshold
  std::vector<uint64_t> per_class;              // verdicts per model class (above the threshold)
  std::string warning;                          // corrupt record / unsupported link
  uint64_t flow_records = 0;                    // handed to the exporter (flows + active updates)
  double seconds = 0;
};

// The table config `flowpic classify` uses for a model (window policy from its picture config).
FlowTableConfig classify_table_config(const Model& model, const ClassifyOptions& opt);

// Calls on_verdict(json_line, info, class index, confidence) for every classified window.
// Throws std::runtime_error when the capture cannot be opened or the model cannot run.
void classify_pcap(const std::string& path, const std::shared_ptr<const Model>& model, const ClassifyOptions& opt,
                   const std::function<void(const std::string& json, const WindowInfo& info, int cls, float conf)>& on_verdict,
                   ClassifyReport* report);

}  // namespace flowpic
