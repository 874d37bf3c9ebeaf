// Offline pipeline: capture file -> packet_step (parse, flow table) -> closed windows.
// Used by `flowpic dataset pcap`, `flowpic classify` and `flowpic render --pcap`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "flowtable/flow_table.hpp"
#include "packet/parse.hpp"
#include "flowtable/packet_step.hpp"

namespace flowpic {

class Progress;

// What an OfflinePipeline has read (not dataplane/pipeline.hpp's PipelineCounters, the
// inference side of flowpicd: one name each, so a binary may link both).
struct OfflineCounters {
  uint64_t pcaps = 0;
  uint64_t pcap_errors = 0;      // captures that stopped on a corrupt record (read up to there)
  uint64_t unsupported_link = 0; // captures skipped for their link type
  uint64_t packets = 0;
  uint64_t windows = 0;          // windows handed to the callback
};

class OfflinePipeline {
 public:
  // closed_ns: the table time at which the window closed (the packet, sweep or flush that
  // closed it), for ordering outputs as the appliance would emit them.
  using WindowFn =
      std::function<void(const WindowInfo& info, const PacketRecord* recs, uint32_t n, TimeNs closed_ns)>;

  // Throws std::invalid_argument on a bad table config.
  OfflinePipeline(const FlowTableConfig& cfg, WindowFn on_window);
  ~OfflinePipeline();

  // Reads one capture and flushes every open window at its end (captures never share
  // flows: each has its own time base). Throws std::runtime_error when it cannot be opened;
  // a corrupt record ends the capture early, counted and reported in *warning.
  void run_pcap(const std::string& path, Progress* progress = nullptr, std::string* warning = nullptr);
  // run_pcap that never throws: "" when the capture was read whole, else why it was not (cannot
  // be opened, unsupported link type, corrupt record). For importers that go on to the next file.
  std::string run_pcap_or_reason(const std::string& path);

  // Packets that come as records rather than frames (the corpus importers of text sources:
  // sizes, times and a flow per record). begin_capture() restarts the clock, feed() accounts
  // one packet of `key` exactly as packet_step would after parsing (same table, same sweep
  // cadence), end_capture() flushes every open window.
  void begin_capture();
  void feed(const FlowKey& key, TimeNs ts, uint32_t ip_len);
  void end_capture();

  // Flow records (flow export): `fn` gets every record the table cuts (see FlowTable::
  // set_flow_end_sink); active_ns 0: no active-timeout updates. Call before the first packet.
  using FlowEndFn = std::function<void(const FlowEndInfo& info)>;
  void set_flow_end(FlowEndFn fn, TimeNs active_ns);

  const OfflineCounters& counters() const noexcept { return counters_; }
  const PacketStepState& step_state() const noexcept { return step_; }  // parse counters across captures
  const FlowTableCounters& table_counters() const noexcept;
  uint64_t clock_backwards() const noexcept { return step_.clock_backwards; }

 private:
  static bool sink(void* ctx, const WindowInfo& info, const PacketRecord* recs, uint32_t n);
  static void end_sink(void* ctx, const FlowEndInfo& info);
  FlowEndFn on_end_;
  FlowTableConfig cfg_;
  WindowFn on_window_;
  std::unique_ptr<FlowTable> table_;
  PacketStepState step_;
  OfflineCounters counters_;
  uint64_t fed_ = 0;  // packets fed since begin_capture()
};

}  // namespace flowpic
