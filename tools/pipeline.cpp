#include "tools/pipeline.hpp"

#include <stdexcept>

#include "packet/pcap_reader.hpp"
#include "tools/progress.hpp"

namespace flowpic {

OfflinePipeline::OfflinePipeline(const FlowTableConfig& cfg, WindowFn on_window)
    : cfg_(cfg), on_window_(std::move(on_window)),
      table_(std::make_unique<FlowTable>(cfg, &OfflinePipeline::sink, this, 0)) {}

OfflinePipeline::~OfflinePipeline() = default;

void OfflinePipeline::set_flow_end(FlowEndFn fn, TimeNs active_ns) {
  on_end_ = std::move(fn);
  table_->set_flow_end_sink(on_end_ ? &OfflinePipeline::end_sink : nullptr, this, active_ns);
}

void OfflinePipeline::end_sink(void* ctx, const FlowEndInfo& info) { static_cast<OfflinePipeline*>(ctx)->on_end_(info); }

const FlowTableCounters& OfflinePipeline::table_counters() const noexcept { return table_->counters(); }

bool OfflinePipeline::sink(void* ctx, const WindowInfo& info, const PacketRecord* recs, uint32_t n) {
  auto* self = static_cast<OfflinePipeline*>(ctx);
  ++self->counters_.windows;
  self->on_window_(info, recs, n, self->step_.now);
  return true;
}

void OfflinePipeline::run_pcap(const std::string& path, Progress* progress, std::string* warning) {
  PcapReader reader(path);
  ++counters_.pcaps;
  const LinkType link = reader.link_type();
  if (link == LinkType::kUnsupported) {
    ++counters_.unsupported_link;
    if (warning) *warning = path + ": link type " + std::to_string(reader.dlt()) + " is not supported; skipped";
    return;
  }
  // Each capture has its own time base: the clock restarts with it.
  step_.now = 0;
  RawPacket pkt;
  uint64_t n = 0;
  while (reader.next(pkt)) {
    packet_step(*table_, step_, pkt.data, pkt.caplen, link, pkt.ts_ns);
    if (++n % kSweepEveryPackets == 0) {
      table_->expire(step_.now, kSweepBudget);
      if (progress && n % 4096 == 0) progress->add(4096);
    }
  }
  if (progress) progress->add(n % 4096);
  table_->flush(step_.now);
  counters_.packets += n;
  if (!reader.error().empty()) {
    ++counters_.pcap_errors;
    if (warning) *warning = path + ": stopped on a corrupt record after " + std::to_string(n) + " packets: " + reader.error();
  }
}

std::string OfflinePipeline::run_pcap_or_reason(const std::string& path) {
  std::string warning;
  try {
    run_pcap(path, nullptr, &warning);
  } catch (const std::exception& e) {
    warning = e.what();
  }
  return warning;
}

void OfflinePipeline::begin_capture() {
  ++counters_.pcaps;
  step_.now = 0;
  fed_ = 0;
}

void OfflinePipeline::feed(const FlowKey& key_in, TimeNs ts, uint32_t ip_len) {
  if (ts < step_.now) ++step_.clock_backwards;
  else step_.now = ts;
  step_.parse.add(ParseResult::kOk);
  FlowKey key = key_in;
  const bool swapped = table_->config().window.bidirectional && canonicalize(key);
  if (table_->on_packet(key, flow_hash(key), ip_len, ts, swapped) == FlowTable::kNoSlot) ++step_.untracked;
  ++counters_.packets;
  if (++fed_ % kSweepEveryPackets == 0) table_->expire(step_.now, kSweepBudget);
}

void OfflinePipeline::end_capture() { table_->flush(step_.now); }

}  // namespace flowpic
