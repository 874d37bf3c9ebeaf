// A closed window of one unidirectional flow: what leaves a flow table and what a
// FlowPic is built from. Shared by the offline tools and the appliance.
#pragma once

#include <cstdint>
#include <vector>

#include "common/flow_key.hpp"

namespace flowpic {

// One packet of a window. 8 bytes so a window's records are compact in rings and pools.
struct PacketRecord {
  uint32_t t_us;    // arrival time, microseconds since the window's first packet
  uint16_t size;    // IP packet length in bytes (may exceed 1500: jumbo/TSO captures)
  uint16_t weight;  // packets this record stands for (>1 only after decimation, see flowtable)
};
static_assert(sizeof(PacketRecord) == 8);

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
