// flowpic-ipfix-bench: flow records per second of the IPFIX encoder alone and of one exporter
// thread sending to a collector (docs/benchmarks.md, bench/ipfix.sh runs it beside softflowd).
//
//   flowpic-ipfix-bench [--records N] [--collector HOST:PORT] [--transport udp|tcp] [--json]
//
// encoder: N records of distinct IPv4 5-tuples encoded into 1472-byte messages, one core.
// exporter: one producer thread pushes the same N records into the exporter's ring (waiting for
// room, as the offline tools do) and the exporter thread encodes and sends them; the rate is
// records / (first push -> finish() returned), so the collector's speed is part of it only
// through the socket. What the collector kept is the script's business (nfdump counts it).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "export/exporter.hpp"
#include "export/ipfix.hpp"

using namespace flowpic;

namespace {

FlowExportMsg record(uint64_t i) {
  FlowExportMsg m;
  std::memset(&m.key, 0, sizeof m.key);
  m.key.family = 4;
  m.key.src[0] = 10;
  m.key.src[1] = static_cast<uint8_t>(i >> 16);
  m.key.src[2] = static_cast<uint8_t>(i >> 8);
  m.key.src[3] = static_cast<uint8_t>(i);
  m.key.dst[0] = 192;
  m.key.dst[1] = 0;
  m.key.dst[2] = 2;
  m.key.dst[3] = static_cast<uint8_t>(i >> 24);
  m.key.sport = static_cast<uint16_t>(1024 + (i % 50000));
  m.key.dport = 443;
  m.key.proto = 17;
  m.start_ns = 1700000000ull * 1000000000ull + i * 1000;
  m.end_ns = m.start_ns + 1000000000ull;
  m.packets = 20 + i % 7;
  m.bytes = 1500 * m.packets;
  m.slot = static_cast<uint32_t>(i);
  m.gen = 1;
  m.cls = static_cast<int16_t>(i % 5);
  m.confidence = 0.8f;
  m.model_tag = 1;
  m.reason = 1;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"IPFIX encoder and exporter throughput (flow records per second)"};
  uint64_t n = 5000000;
  std::string collector, transport = "udp";
  bool json = false;
  double pace = 0;
  app.add_option("--records", n, "flow records")->capture_default_str();
  app.add_option("--collector", collector, "HOST:PORT: also run the exporter into it");
  app.add_option("--transport", transport, "udp or tcp")->check(CLI::IsMember({"udp", "tcp"}));
  app.add_option("--pace", pace, "records per second offered to the exporter (0: as fast as it takes them)");
  app.add_flag("--json", json, "one JSON object");
  CLI11_PARSE(app, argc, argv);
  nlohmann::json out;
  out["records"] = n;

  // Encoder alone.
  {
    std::vector<uint8_t> buf(1472);
    ipfix::MessageBuilder mb(1, 1472);
    ipfix::Flow f;
    f.model = "corpus-lenet32-b7b4a673";
    uint64_t messages = 0, bytes = 0;
    const auto t0 = std::chrono::steady_clock::now();
    mb.begin(buf.data(), 0, 0);
    for (uint64_t i = 0; i < n; ++i) {
      const FlowExportMsg m = record(i);
      f.key = m.key;
      f.start_ms = m.start_ns / 1000000;
      f.end_ms = m.end_ns / 1000000;
      f.packets = m.packets;
      f.bytes = m.bytes;
      f.app = ipfix::selector_of(m.cls);
      f.confidence = m.confidence;
      if (!mb.add_flow(f)) {
        bytes += mb.finish();
        ++messages;
        mb.begin(buf.data(), 0, static_cast<uint32_t>(i));
        mb.add_flow(f);
      }
    }
    bytes += mb.finish();
    ++messages;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out["encoder"] = {{"seconds", s}, {"records_per_s", n / s}, {"messages", messages}, {"bytes", bytes},
                      {"records_per_message", static_cast<double>(n) / messages}};
  }

  if (!collector.empty()) {
    ExportConfig c;
    if (const std::string err = parse_collector(collector, &c.host, &c.port); !err.empty()) {
      std::fprintf(stderr, "--collector: %s\n", err.c_str());
      return 1;
    }
    c.transport = transport == "tcp" ? ExportConfig::Transport::kTcp : ExportConfig::Transport::kUdp;
    c.ring_size = 1u << 16;
    IpfixExporter ex(c, 1);
    ex.publish(1, "corpus-lenet32-b7b4a673", {"VoIP", "Video", "File_Transfer", "Chat", "Browsing"});
    std::vector<FlowExportMsg> recs(n);
    for (uint64_t i = 0; i < n; ++i) recs[i] = record(i);
    ex.start();
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < n; ++i) {
      if (pace > 0 && (i & 1023) == 0) {
        const auto due = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(i / pace));
        std::this_thread::sleep_until(due);
      }
      ex.push_wait(0, recs[i]);
    }
    ex.finish();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ExportStats st = ex.stats();
    out["exporter"] = {{"collector", ex.collector()}, {"seconds", s}, {"records_per_s", n / s},
                       {"sent", st.flow_records}, {"messages", st.messages}, {"bytes", st.bytes},
                       {"send_errors", st.send_errors}, {"lost_send", st.records_lost_send},
                       {"pace", pace}};
  }
  if (json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("encoder: %.1f M records/s (%.0f records per 1472-byte message)\n",
                out["encoder"]["records_per_s"].get<double>() / 1e6, out["encoder"]["records_per_message"].get<double>());
    if (out.contains("exporter"))
      std::printf("exporter -> %s: %.2f M records/s, %lu sent in %lu messages, %lu send errors\n",
                  out["exporter"]["collector"].get<std::string>().c_str(),
                  out["exporter"]["records_per_s"].get<double>() / 1e6, out["exporter"]["sent"].get<unsigned long>(),
                  out["exporter"]["messages"].get<unsigned long>(), out["exporter"]["send_errors"].get<unsigned long>());
  }
  return 0;
}
