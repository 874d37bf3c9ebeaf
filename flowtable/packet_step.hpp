// The per-packet step of flowpic: clock, parse, hash, flow table. `flowpic classify`,
// `flowpic dataset` and flowpicd's polling lcores all call packet_step for every packet, so
// the same packets give the same windows (and so the same verdicts) offline and on the wire.
// Header-only and dependency-light (packet + flowtable; link packet_dep and flowtable_dep), in
// flowtable/ so that the dataplane need not reach into the offline tools for it.
#pragma once

#include <cstdint>

#include "common/clock.hpp"
#include "flowtable/flow_table.hpp"
#include "packet/parse.hpp"

namespace flowpic {

struct PacketStepState {
  TimeNs now = 0;                // latest packet time seen: the time given to expire() sweeps
  uint64_t clock_backwards = 0;  // packets stamped earlier than an earlier packet (merged captures)
  uint64_t untracked = 0;        // parsed packets the table did not track (table full)
  ParseCounters parse;           // every packet, by parse result
};

// One packet: `ts` is its time (capture time offline, mbuf/TSC time in the dataplane).
// The packet goes to the table with its own time (the table keeps each flow's time monotonic);
// `now` only moves forward and is what the owner passes to expire(). This is exactly what
// flowpicd's lcore loop does (dataplane/worker.cpp). Returns the flow's slot or
// FlowTable::kNoSlot (not IP / malformed / table full). No allocation, exception or syscall.
inline uint32_t packet_step(FlowTable& table, PacketStepState& st, const uint8_t* data, uint32_t caplen,
                            LinkType link, TimeNs ts, ParsedPacket& parsed) noexcept {
  if (ts < st.now) ++st.clock_backwards;
  else st.now = ts;
  const ParseResult r = parse_packet(data, caplen, link, parsed);
  st.parse.add(r);
  if (r != ParseResult::kOk && r != ParseResult::kOkFragment) return FlowTable::kNoSlot;
  FlowKey key = parsed.key;
  const bool swapped = table.config().window.bidirectional && canonicalize(key);
  const uint32_t slot = table.on_packet(key, flow_hash(key), parsed.ip_len, ts, swapped);
  if (slot == FlowTable::kNoSlot) ++st.untracked;
  return slot;
}

inline uint32_t packet_step(FlowTable& table, PacketStepState& st, const uint8_t* data, uint32_t caplen,
                            LinkType link, TimeNs ts) noexcept {
  ParsedPacket parsed;
  return packet_step(table, st, data, caplen, link, ts, parsed);
}

// Sweep cadence: after every kSweepEveryPackets packets (one dataplane burst, kBurst) the owner
// calls table.expire(st.now, kSweepBudget) (flowpicd: LcoreState::expire_budget). The table's
// windows do not depend on when the sweep runs except when it is full (idle flows reclaimed).
constexpr uint32_t kSweepEveryPackets = 32;
constexpr uint32_t kSweepBudget = 64;

}  // namespace flowpic
