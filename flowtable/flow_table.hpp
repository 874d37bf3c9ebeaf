// Per-lcore (or per-reader) table of flows and their open windows. A flow is one direction of
// a connection, or both when the window policy is bidirectional (the caller then passes
// canonical keys, see canonicalize() in common/flow_key.hpp, and which way each packet went).
// Single-threaded by design: one owner calls everything except the const readers noted.
// All memory is allocated in the constructor; the packet path allocates nothing,
// takes no lock, throws nothing and makes no system call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.hpp"
#include "common/flow_key.hpp"
#include "common/window.hpp"

namespace flowpic {

struct WindowPolicy {
  enum class Kind : uint8_t { kTime, kCount };
  Kind kind = Kind::kCount;
  TimeNs length_ns = 15 * kNsPerSec;  // time windows: block length (paper: 15 s or 60 s)
  uint32_t packets = 20;              // count windows: packets per window
  uint32_t min_packets = 10;          // smaller windows are not emitted (counted as too_small)
  uint32_t max_windows = 0;           // windows emitted per flow; 0 = unlimited, 1 = early verdict only
  bool bidirectional = false;         // a flow is both directions of a connection; each record says
                                      // which (PacketRecord::reverse); count windows count both
  uint32_t min_ip_len = 0;            // packets with a shorter IP length count in the flow's totals but
                                      // enter no window (53: TCP's pure ACKs, as in sources that only
                                      // keep packets with payload); 0 = every packet
};

struct FlowTableConfig {
  uint32_t capacity = 1u << 16;          // concurrent flows (preallocated)
  TimeNs idle_timeout_ns = 30 * kNsPerSec;
  WindowPolicy window;
  uint32_t max_records = 1024;           // records kept per window; past it, stride decimation
  uint32_t record_chunks = 0;            // chunks of kChunkRecords in the shared pool; 0 = auto
  std::string validate() const;          // empty when usable, else what to change
  // Pool size used when record_chunks == 0: count windows capacity * ceil(min(packets,
  // max_records) / 32) (every open window can hold all its records); time windows
  // capacity / 2 + 1024, at most capacity * ceil(max_records / 32).
  uint32_t effective_record_chunks() const noexcept;
};

// Counters of one table. Written only by the owner; readable from other threads
// (64-bit aligned stores; a reader may see a value a few packets old).
struct FlowTableCounters {
  uint64_t packets = 0;              // packets given to on_packet
  uint64_t flows_created = 0;
  uint64_t flows_expired = 0;        // idle timeout
  uint64_t flows_rejected_full = 0;  // packets of new flows not tracked because the table was full
  uint64_t windows_closed = 0;       // all windows closed, whatever happened next
  uint64_t windows_emitted = 0;      // handed to the sink and accepted
  uint64_t windows_too_small = 0;    // fewer than min_packets
  uint64_t windows_sink_full = 0;    // sink refused (ring full): dropped
  uint64_t windows_over_limit = 0;   // past max_windows for their flow: not emitted
  uint64_t windows_decimated = 0;    // windows whose records were thinned (weights > 1)
  uint64_t record_pool_empty = 0;    // times a window had to decimate early because the pool ran dry
                                     // (or could not get its first chunk: see windows_no_records)
  // Added by flowtable (see docs/flowtable.md):
  uint64_t flows_reclaimed = 0;      // idle flows expired to make room for a new flow (also in flows_expired)
  uint64_t flows_flushed = 0;        // flows forgotten by flush()
  uint64_t windows_no_records = 0;   // qualifying windows not emitted: the pool had no chunk at their first packet
  uint64_t windows_records_capped = 0;  // windows whose records stopped at the maximum stride (32768):
                                        // their weights sum to less than their packets
  // Index probes that walked more than kLongProbe entries. With the secret per-process hash seed
  // (flow_hash) a cluster that long is vanishingly rare at load <= 1/2; a rising count means keys
  // that collide, e.g. crafted against a known seed (hash flooding).
  uint64_t long_probes = 0;
  static constexpr uint32_t kLongProbe = 32;
  // Flow records (set_flow_end_sink): records handed to the sink, of which active-timeout updates.
  uint64_t flow_records = 0;
  uint64_t flow_updates = 0;
};
// Every closed window lands in exactly one of: windows_emitted, windows_sink_full,
// windows_too_small, windows_over_limit, windows_no_records (they sum to windows_closed).

// Receives each closed window that qualifies. Return false when it cannot take it
// (e.g. ring full): the window is dropped and counted, the caller never waits.
// `recs` is valid only during the call. The sink may call apply_verdict, verdict, find,
// scan and counters on the table, never on_packet, on_burst, expire or flush.
// A null sink takes every window (counted as emitted): for benchmarks.
using WindowSink = bool (*)(void* ctx, const WindowInfo& info, const PacketRecord* recs, uint32_t n);

// Why a flow record was cut (the IPFIX flowEndReason values, RFC 7011 / IANA).
enum class FlowEndReason : uint8_t { kIdle = 1, kActive = 2, kEndDetected = 3, kForced = 4, kLackOfResources = 5 };

// One flow record (flow export): a flow that ended, or an update of one that reached the active
// timeout. Counts and times cover the flow since its previous record (its start for the first).
struct FlowEndInfo {
  FlowKey key;                // as the flow's first packet saw it
  TimeNs start_ns = 0;        // first packet, or (updates) the instant the previous record was cut
  TimeNs end_ns = 0;          // last packet
  uint64_t packets = 0, bytes = 0;
  uint32_t slot = 0, gen = 0;
  int16_t verdict = -1;       // the flow's class when the record was cut (-1 none)
  float confidence = 0.f;
  uint32_t model_tag = 0;
  uint16_t pending = 0;       // windows of the flow emitted but whose verdicts were not applied yet
                              // (0 for updates: they carry the verdict of the moment)
  FlowEndReason reason = FlowEndReason::kIdle;
};
// Called by the owner thread, inside on_packet/on_burst/expire/flush, after the flow's last
// window went to the window sink. Must not call into the table. Never null once set.
using FlowEndSink = void (*)(void* ctx, const FlowEndInfo& info);

// Per-flow state visible to readers (control plane, tests).
struct FlowView {
  FlowKey key;
  uint64_t packets = 0;        // lifetime
  uint64_t bytes = 0;          // lifetime
  TimeNs first_ns = 0;
  TimeNs last_ns = 0;
  uint32_t window_index = 0;   // current window number
  uint32_t window_packets = 0; // packets in the open window
  int16_t verdict = -1;        // class index of the latest verdict, -1 = none yet
  float confidence = 0.f;
  uint32_t model_tag = 0;      // caller-defined id of the model that gave the verdict
};

class FlowTable {
 public:
  static constexpr uint32_t kNoSlot = 0xffffffffu;
  static constexpr uint32_t kChunkRecords = 32;
  static constexpr uint32_t kMaxCapacity = 1u << 26;
  static constexpr uint32_t kReclaimProbe = 8;      // slots looked at for an idle flow when full
  static constexpr uint32_t kMaxStrideLog2 = 15;    // record weights stay <= 32768

  // Throws std::invalid_argument when cfg.validate() is not empty, std::bad_alloc if memory is short.
  FlowTable(const FlowTableConfig& cfg, WindowSink sink, void* sink_ctx, uint8_t lcore_id = 0);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Fast path. Accounts one packet of `key` (hash = flow_hash(key)) at time `now`;
  // may close and emit windows. Returns the flow's slot, or kNoSlot if it is not tracked.
  // Bidirectional tables: `key` is canonical and `swapped` is what canonicalize() returned for
  // the packet's own key; a record is `reverse` when its packet went the other way from the
  // flow's first packet, and windows carry the key as the first packet saw it (initiator ->
  // responder). Unidirectional tables ignore `swapped`.
  uint32_t on_packet(const FlowKey& key, uint64_t hash, uint32_t ip_len, TimeNs now, bool swapped = false) noexcept;

  // Same result as calling on_packet(keys[i], hashes[i], ip_lens[i], times[i]) for i = 0..n-1
  // in order (slots_out[i] = its return value, verdicts_out[i] = verdict() of that slot right
  // after the packet; either may be null), with the index, slot and record cache misses of the
  // burst overlapped: while packet i is accounted, packet i + 20 has its index entry read and
  // its candidate slot prefetched, and packet i + 8 its record line. Use it from poll loops,
  // having called prefetch(hashes[i]) as the hashes were computed. `swapped` (null: none) as
  // on_packet's, one byte per packet.
  static constexpr uint32_t kMaxBurst = 64;
  void on_burst(const FlowKey* keys, const uint64_t* hashes, const uint32_t* ip_lens, const TimeNs* times,
                uint32_t n, uint32_t* slots_out, int16_t* verdicts_out = nullptr,
                const uint8_t* swapped = nullptr) noexcept;

  // Flow records: `sink` gets a record when a flow ends (idle, reclaimed, flushed) and, every
  // `active_timeout_ns` (0: never) of an active flow, an update found by the sweep (expire(); so
  // an update is cut up to one sweep period late). Allocates capacity x 32 B of per-flow export
  // state: call before the first packet, off the fast path. Throws std::bad_alloc.
  void set_flow_end_sink(FlowEndSink sink, void* ctx, TimeNs active_timeout_ns);

  // Prefetches the index bucket of `hash` (for callers running their own pipeline).
  void prefetch(uint64_t hash) const noexcept;

  // Verdict class of a slot (-1 none) for inline actions; cheap.
  int16_t verdict(uint32_t slot) const noexcept;

  // Bounded sweep: looks at up to `budget` slots from a rotating cursor, expiring idle
  // flows and closing time windows whose end has passed. Call once per loop iteration.
  void expire(TimeNs now, uint32_t budget) noexcept;

  // Closes every open window (emitting those that qualify) and forgets all flows.
  void flush(TimeNs now) noexcept;

  // Applies a verdict to the flow that owned `slot` when the window was closed; ignored
  // (returns false) if the slot was reused since (generation differs).
  bool apply_verdict(uint32_t slot, uint32_t gen, int16_t cls, float confidence, uint32_t model_tag) noexcept;

  // Readers (owner thread, or any thread accepting slightly stale values).
  const FlowTableCounters& counters() const noexcept;
  uint32_t size() const noexcept;          // flows tracked now
  uint32_t capacity() const noexcept;
  std::size_t memory_bytes() const noexcept;  // everything allocated (slots, index, record pool)
  uint32_t record_chunks() const noexcept;    // chunks in the record pool (after auto sizing)
  uint32_t chunks_free() const noexcept;      // chunks not held by an open window
  const FlowTableConfig& config() const noexcept;

  // Visits up to `budget` slots from *cursor (advanced; wraps to 0 at the end and returns
  // true when a full pass completed). For control-plane scans done in small steps.
  template <class F>
  bool scan(uint32_t* cursor, uint32_t budget, F&& visit) const {
    return scan_impl(cursor, budget, [](void* f, const FlowView& v) { (*static_cast<F*>(f))(v); }, &visit);
  }
  // The flow of `key` (either direction's key in a bidirectional table).
  bool find(const FlowKey& key, FlowView& out) const noexcept;

 private:
  bool scan_impl(uint32_t* cursor, uint32_t budget, void (*visit)(void*, const FlowView&), void* ctx) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowpic
