// A closed window of one flow (unidirectional, or both directions of a connection when the
// window policy says so): what leaves a flow table and what a FlowPic is built from. Shared
// by the offline tools and the appliance.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/flow_key.hpp"

namespace flowpic {

// One packet of a window. 8 bytes so a window's records are compact in rings and pools.
// Build it with the constructor (brace initialisation {t, size, weight} calls it), never by
// position: the size shares its 16 bits with the direction.
struct PacketRecord {
  static constexpr uint16_t kMaxSize = 0x7fff;  // sizes are clamped here (a picture's top row is lower)
  uint32_t t_us;        // arrival time, microseconds since the window's first packet
  uint16_t size : 15;   // IP packet length in bytes, clamped to kMaxSize (jumbo/TSO captures exceed 1500)
  uint16_t reverse : 1; // bidirectional windows: 1 = sent by the flow's responder (the side that did
                        // not send its first packet); always 0 in unidirectional windows
  uint16_t weight;      // packets this record stands for (>1 only after decimation, see flowtable)

  PacketRecord() = default;
  constexpr PacketRecord(uint32_t t, uint32_t ip_len, uint16_t w, bool rev = false) noexcept
      : t_us(t), size(static_cast<uint16_t>(ip_len < kMaxSize ? ip_len : kMaxSize)), reverse(rev ? 1 : 0), weight(w) {}
  // The 16-bit word a dataset file stores for size and direction (size | reverse << 15).
  uint16_t size_word() const noexcept { return static_cast<uint16_t>(size | (reverse << 15)); }
};
static_assert(sizeof(PacketRecord) == 8);
static_assert(std::is_trivially_copyable_v<PacketRecord>);

enum class CloseReason : uint8_t {
  kCount = 0,   // count window reached its packet count
  kTime = 1,    // a packet arrived after the time window's end, or the sweep saw the end pass
  kIdle = 2,    // flow idle longer than the idle timeout
  kFlush = 3,   // end of input / shutdown
  kEvict = 4,   // flow evicted to make room (table full policy)
};
const char* close_reason_name(CloseReason r) noexcept;

struct WindowInfo {
  FlowKey key;
  uint64_t start_ns = 0;     // window start: time window = block start; count window = first packet
  uint64_t end_ns = 0;       // time window = block end (start + length); count window = last packet
  uint64_t first_ns = 0;     // first packet in the window
  uint64_t last_ns = 0;      // last packet in the window
  uint64_t bytes = 0;        // sum of IP lengths
  uint32_t packets = 0;      // packets in the window (sum of record weights)
  uint32_t index = 0;        // 0-based window number within the flow
  uint32_t n_records = 0;    // records kept (<= packets; smaller after decimation)
  CloseReason reason = CloseReason::kFlush;
  uint8_t lcore = 0;         // owning dataplane lcore (0 offline), for verdict routing
  uint32_t flow_slot = 0;    // owning flow-table slot, for verdict routing
  uint32_t flow_gen = 0;     // generation of that slot, so a stale verdict is recognised
};

// Offline owner of a closed window (tests, dataset builder, classify).
struct Window {
  WindowInfo info;
  std::vector<PacketRecord> records;
};

}  // namespace flowpic
