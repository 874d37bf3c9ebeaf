// The polling lcore: receive bursts, timestamp, parse, account in the lcore's own flow
// table, act on the flow's class, transmit on the peer port. Closed windows leave through
// the lcore's ring to the builders; verdicts come back through its verdict ring.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "common/clock.hpp"
#include "dataplane/config.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/pipeline.hpp"  // WindowMsg, kWindowMsgStash
#include "dataplane/sweep_pacer.hpp"
#include "flowtable/flow_table.hpp"

struct rte_ring;
struct rte_mempool;

namespace flowpic {

class ClassTable;
class IpfixExporter;

constexpr uint16_t kBurst = 32;
constexpr unsigned kBurstsInFlight = 3;  // bursts an lcore holds in its receive pipeline (worker.cpp)

// TSC -> wall-clock nanoseconds (epoch at start + elapsed ticks), integer math only.
struct TscClock {
  uint64_t tsc0 = 0;
  uint64_t epoch0_ns = 0;
  uint64_t mult = 0;  // ns per tick << 32
  void init(uint64_t hz, uint64_t tsc_now, uint64_t epoch_now_ns) noexcept;
  TimeNs to_ns(uint64_t tsc) const noexcept {
    return epoch0_ns + static_cast<uint64_t>((static_cast<unsigned __int128>(tsc - tsc0) * mult) >> 32);
  }
};

// A flows.top / flows.get question for one polling lcore, answered by the lcore itself
// between bursts: the control thread never reads the lcore's table (it is not thread-safe)
// and never takes a lock the lcore waits on. One question at a time per lcore: the asker
// fills the arguments, then publishes `asked` (release); the lcore scans its table in steps
// of kStep slots per loop iteration, fills the answer, then publishes `answered` (release).
// Preallocated: no allocation on the lcore.
struct FlowQuery {
  static constexpr uint32_t kMaxTop = 1000;  // flows.top n is clamped to this
  static constexpr uint32_t kStep = 4096;    // table slots scanned per loop iteration
  enum class Kind : uint8_t { kTop, kGet };
  std::atomic<uint32_t> asked{0};
  std::atomic<uint32_t> answered{0};
  // Arguments (written by the asker before `asked`).
  Kind kind = Kind::kTop;
  bool by_bytes = false;
  uint32_t n = 10;
  FlowKey key{};
  // Answer (written by the lcore before `answered`): top: views[0..count) as a min-heap on
  // the ranking key (the asker sorts); get: found and views[0].
  uint32_t count = 0;
  bool found = false;
  std::array<FlowView, kMaxTop> views{};
  // Lcore-private progress.
  uint32_t working = 0;  // the question being answered (0: none)
  uint32_t cursor = 0;
};

// Where the lcore's time comes from, once decided (auto decides on the first packet).
enum class LcoreClock : uint8_t { kUndecided = 0, kTrace = 1, kTsc = 2 };

// "trace", "tsc", or "undecided" (clock: auto before the lcore's first packet): the one spelling
// of the clock an lcore uses, for the summary and the stats.
inline const char* lcore_clock_name(uint8_t used) noexcept {
  switch (static_cast<LcoreClock>(used)) {
    case LcoreClock::kTrace: return "trace";
    case LcoreClock::kTsc: return "tsc";
    default: return "undecided";
  }
}

struct LcoreState {
  // Placement
  uint32_t index = 0;       // 0..n-1: owner id in windows and verdicts
  unsigned lcore_id = 0;    // EAL lcore
  unsigned cpu = 0;
  uint16_t rx_port = 0, rx_queue = 0;
  uint16_t tx_port = 0, tx_queue = 0;
  uint32_t port_index = 0;  // index of the rx port in the config
  // Wiring
  std::unique_ptr<FlowTable> table;
  rte_ring* win_ring = nullptr;
  rte_mempool* win_pool = nullptr;
  rte_ring* verdict_ring = nullptr;
  const ClassTable* classes = nullptr;
  const std::atomic<bool>* stop = nullptr;
  uint32_t max_records = 0;
  RingFullPolicy ring_full = RingFullPolicy::kDrop;
  IpfixExporter* exporter = nullptr;  // flow records go here (null: no export)
  uint32_t ingress = 0;               // ingressInterface of its records (the rx port's DPDK id)
  // Clock
  ClockMode clock_mode = ClockMode::kAuto;
  std::atomic<uint8_t> clock_used{0};  // LcoreClock
  int ts_offset = -1;                  // mbuf dynamic timestamp field (-1: not registered)
  uint64_t ts_flag = 0;
  TscClock tsc;
  TimeNs now = 0;                      // latest time seen (trace) / read (tsc)
  // Window messages taken from win_pool ahead of need: one pool access per kWindowMsgStash
  // windows instead of one per window, and the next message is prefetched for writing. They
  // go back to the pool when the lcore stops (pools are sized with kWindowMsgStash per lcore).
  void* msg_stash[kWindowMsgStash] = {};
  uint32_t msg_stashed = 0;
  // State while stopping: the sink may wait so nothing is lost.
  bool flushing = false;
  uint32_t expire_budget = 64;        // = kSweepBudget of flowtable/packet_step.hpp: most slots per sweep
  SweepPacer sweep;                   // live time: slots owed to the sweep (set up with the table)
  uint32_t since_sweep = 0;           // trace time: packets since the last sweep
  LcoreCounters c;
  FlowQuery query;
};

// FlowTable sink: copies the window into a pooled message and enqueues it (never allocates).
// A full ring or an empty pool drops the window (windows_ring_full, windows_pool_empty) unless
// the lcore is flushing or its policy is kWait.
bool window_sink(void* lcore_state, const WindowInfo& info, const PacketRecord* recs, uint32_t n);

// FlowTable flow-end sink (IPFIX export): the record goes into the exporter's ring for this
// lcore; a full ring drops it (flow_records_dropped) unless the lcore is flushing.
void flow_end_sink(void* lcore_state, const FlowEndInfo& info);

// After the lcore returned and the pipeline finished: verdicts still in its ring belong to
// ended flows; with an exporter they are handed on to it (the caller is the ring's producer now).
void drain_late_verdicts(LcoreState& lc);

// Puts the lcore's stashed window messages back into its pool (lcore_main does on stop).
void return_window_stash(LcoreState& lc);

// rte_eal_remote_launch entry point; arg is a LcoreState*.
int lcore_main(void* arg);

// Inline actions on a packet's IP header (exposed for tests of the rewrite itself).
// Rewrites the DSCP bits of IPv4 TOS (fixing the header checksum incrementally) or of the
// IPv6 traffic class. `ip` points at the IP header, `avail` bytes are readable.
// Returns false when nothing could be changed (too short, unknown version).
bool rewrite_dscp(uint8_t* ip, uint32_t avail, uint8_t dscp) noexcept;

}  // namespace flowpic
