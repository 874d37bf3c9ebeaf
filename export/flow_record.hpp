// The exporter's record of a flow from the flow table's FlowEndInfo: the fields both producers
// (flowpicd's polling lcores, `flowpic classify --ipfix`) copy alike. Each then sets what only it
// knows: the ingress port, and the verdict (the lcore's table carries it; classify joins its own).
// Header-only: export/ itself does not depend on flowtable/. Allocates nothing, throws nothing.
#pragma once

#include <cstdint>

#include "export/exporter.hpp"
#include "flowtable/flow_table.hpp"

namespace flowpic {

inline FlowExportMsg flow_record(const FlowEndInfo& f) noexcept {
  FlowExportMsg m;
  m.kind = FlowExportMsg::kFlow;
  m.key = f.key;
  m.start_ns = f.start_ns;
  m.end_ns = f.end_ns;
  m.packets = f.packets;
  m.bytes = f.bytes;
  m.slot = f.slot;
  m.gen = f.gen;
  m.reason = static_cast<uint8_t>(f.reason);
  return m;
}

}  // namespace flowpic
