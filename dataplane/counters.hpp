// Counters written by exactly one thread and read by others (stats lines, summary, control).
// A relaxed atomic store of (load + n) compiles to a plain add: no lock prefix on the fast path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "packet/parse.hpp"

namespace flowpic {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void add_shared(uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }  // several writers
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// One per polling lcore.
struct alignas(64) LcoreCounters {
  Counter rx;                 // packets received
  Counter tx;                 // packets the peer's tx queue accepted
  Counter rx_bytes;           // bytes of the received frames (mbuf pkt_len)
  Counter tx_bytes;           // bytes of the frames the tx queue accepted
  Counter dropped_action;     // dropped because the flow's class says drop
  Counter tx_full;            // forwarded but the tx queue refused them: freed
  Counter dscp_marked;        // packets whose DSCP/traffic class was rewritten
  Counter no_timestamp;       // trace clock but the mbuf had no timestamp (TSC used instead)
  Counter untracked;          // IP packets whose flow the table could not track (table full)
  std::array<Counter, kParseResultCount> parse;  // by ParseResult
  Counter windows_sent;       // windows handed to the builders
  Counter windows_ring_full;  // dropped: ring to the builders full
  Counter windows_pool_empty; // dropped: no free window message
  Counter verdicts_applied;   // verdicts that reached their flow
  Counter verdicts_stale;     // flow slot reused since the window closed
  Counter flow_records;       // flow records handed to the IPFIX exporter's ring
  Counter flow_records_dropped;  // dropped: the exporter's ring was full
  Counter late_verdicts_dropped; // verdicts of ended flows not handed on: the exporter's ring was full
  std::atomic<uint64_t> last_rx_tsc{0};  // for replay end detection (also moved on while the lcore
                                         // waits for room in its window ring: busy, not idle)
  Counter backpressure_tsc;              // TSC cycles the lcore waited for room (on_full: wait, stop)
};

}  // namespace flowpic
