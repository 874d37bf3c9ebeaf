// Test helpers: a sink that keeps every window it is given, and flow keys.
#pragma once

#include <cstring>
#include <vector>

#include "common/flow_key.hpp"
#include "common/window.hpp"
#include "flowtable/flow_table.hpp"

namespace flowpic::test {

struct Collector {
  std::vector<Window> windows;
  uint32_t calls = 0;
  uint32_t refuse_every = 0;  // refuse call k when refuse_every && k % refuse_every == refuse_every - 1

  static bool sink(void* ctx, const WindowInfo& info, const PacketRecord* recs, uint32_t n) {
    auto* self = static_cast<Collector*>(ctx);
    const uint32_t k = self->calls++;
    if (self->refuse_every && k % self->refuse_every == self->refuse_every - 1) return false;
    self->windows.push_back(Window{info, std::vector<PacketRecord>(recs, recs + n)});
    return true;
  }
};

inline FlowKey key_v4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto = 17) {
  FlowKey k;
  std::memset(&k, 0, sizeof(k));
  for (int i = 0; i < 4; ++i) {
    k.src[i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    k.dst[i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
  k.sport = sport;
  k.dport = dport;
  k.proto = proto;
  k.family = 4;
  return k;
}

inline FlowKey key_n(uint32_t n) { return key_v4(0x0a000000u + n, 0xc0a80001u, static_cast<uint16_t>(1024 + n % 60000), 443, 6); }

inline uint32_t feed(FlowTable& t, const FlowKey& k, uint32_t len, TimeNs now) {
  return t.on_packet(k, flow_hash(k), len, now);
}

// A packet of `k` (as the packet carries it) into a bidirectional table: canonical key, direction.
inline uint32_t feed_bi(FlowTable& t, FlowKey k, uint32_t len, TimeNs now) {
  const bool swapped = canonicalize(k);
  return t.on_packet(k, flow_hash(k), len, now, swapped);
}

inline bool same_info(const WindowInfo& a, const WindowInfo& b) {
  return a.key == b.key && a.start_ns == b.start_ns && a.end_ns == b.end_ns && a.first_ns == b.first_ns &&
         a.last_ns == b.last_ns && a.bytes == b.bytes && a.packets == b.packets && a.index == b.index &&
         a.n_records == b.n_records && a.reason == b.reason && a.lcore == b.lcore &&
         a.flow_slot == b.flow_slot && a.flow_gen == b.flow_gen;
}

inline bool same_records(const std::vector<PacketRecord>& a, const std::vector<PacketRecord>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].t_us != b[i].t_us || a[i].size != b[i].size || a[i].weight != b[i].weight ||
        a[i].reverse != b[i].reverse)
      return false;
  return true;
}

inline uint64_t weight_sum(const std::vector<PacketRecord>& r) {
  uint64_t s = 0;
  for (const auto& x : r) s += x.weight;
  return s;
}

}  // namespace flowpic::test
