// flowpic classify --model M FILE.pcap
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "export/exporter.hpp"
#include "infer/model.hpp"
#include "tools/classify.hpp"
#include "tools/cli.hpp"
#include "tools/dataset.hpp"

namespace flowpic::cli {

void add_classify(CLI::App& app, Action* action) {
  struct Args {
    std::string model, pcap, out, idle = "30s";
    float threshold = 0.f;
    uint32_t capacity = 1u << 16;
    int batch = 64, threads = 1;
    bool tolerate = false;
    std::string ipfix, ipfix_transport = "udp", active = "60s";
    uint32_t domain = 1;
  };
  auto a = std::make_shared<Args>();
  auto* s = app.add_subcommand("classify",
                               "classify a capture as the appliance does: one JSON line per classified window on stdout, "
                               "printed as windows close (memory does not grow with the capture; a FIFO works), "
                               "counters on stderr");
  s->add_option("pcap", a->pcap, "capture file (pcap, pcapng)")->required();
  s->add_option("-m,--model", a->model, "model file")->required();
  s->add_option("--threshold", a->threshold, "confidence below this gives class \"unknown\"")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  s->add_option("--flow-capacity", a->capacity, "concurrent flows in the flow table")->capture_default_str()->check(CLI::Range(16u, 1u << 26));
  s->add_option("--idle-timeout", a->idle, "a flow idle this long ends (e.g. 30s, 500ms)")->capture_default_str();
  s->add_option("--batch", a->batch, "pictures per inference batch")->capture_default_str()->check(CLI::Range(1, 4096));
  s->add_option("--threads", a->threads, "inference threads")->capture_default_str()->check(CLI::Range(1, 256));
  s->add_option("-o,--output", a->out, "write the JSON lines here instead of stdout");
  s->add_option("--ipfix", a->ipfix,
                "also export one IPFIX flow record per flow (class as applicationId, docs/export.md) to the collector "
                "HOST:PORT, as flowpicd's exporters.ipfix does");
  s->add_option("--ipfix-transport", a->ipfix_transport, "udp or tcp")->capture_default_str()->check(CLI::IsMember({"udp", "tcp"}));
  s->add_option("--ipfix-domain", a->domain, "IPFIX observation domain id")->capture_default_str();
  s->add_option("--active-timeout", a->active, "with --ipfix: a flow active this long gets an update record")
      ->capture_default_str();
  s->add_flag("--tolerate-corrupt", a->tolerate,
              "exit 0 when the capture is truncated, corrupt or of an unsupported link type (the verdicts of what "
              "could be read are printed either way; without this flag the exit code is 3)");
  s->callback([action, a] {
    *action = [a] {
      ClassifyOptions opt;
      opt.flow_capacity = a->capacity;
      opt.idle_timeout_ns = parse_duration(a->idle, "--idle-timeout");
      opt.threshold = a->threshold;
      opt.batch = a->batch;
      opt.threads = a->threads;
      opt.progress = progress_enabled();
      const auto model = Model::load(a->model);
      std::unique_ptr<IpfixExporter> exporter;
      if (!a->ipfix.empty()) {
        ExportConfig ec;
        if (const std::string err = parse_collector(a->ipfix, &ec.host, &ec.port); !err.empty())
          throw std::runtime_error("--ipfix: " + err);
        ec.transport = a->ipfix_transport == "tcp" ? ExportConfig::Transport::kTcp : ExportConfig::Transport::kUdp;
        ec.observation_domain = a->domain;
        ec.active_timeout_s = static_cast<double>(parse_duration(a->active, "--active-timeout")) / 1e9;
        opt.active_timeout_ns = parse_duration(a->active, "--active-timeout");
        exporter = std::make_unique<IpfixExporter>(ec, 1);
        exporter->start();
        opt.exporter = exporter.get();
      }
      FILE* out = stdout;
      if (!a->out.empty()) {
        out = std::fopen(a->out.c_str(), "w");
        if (!out) throw std::runtime_error(a->out + ": cannot write: " + std::strerror(errno));
      }
      ClassifyReport rep;
      classify_pcap(a->pcap, model, opt,
                    [out](const std::string& line, const WindowInfo&, int, float) {
                      std::fputs(line.c_str(), out);
                      std::fputc('\n', out);
                    },
                    &rep);
      if (out != stdout && std::fclose(out) != 0) throw std::runtime_error(a->out + ": write failed");
      if (exporter) exporter->finish();
      std::fflush(stdout);
      // A capture that could not be read to its end is an error for scripts (exit 3), loudly.
      const bool incomplete = !rep.warning.empty();
      if (incomplete)
        spdlog::error("{}{}", rep.warning,
                      a->tolerate ? " (--tolerate-corrupt: exit 0)" : "; the verdicts above cover what was read (exit 3)");
      // Summary counters: the same names flowpicd prints.
      std::string parse;
      for (size_t r = 0; r < kParseResultCount; ++r)
        if (rep.parse.by_result[r])
          parse += fmt::format(" {}={}", parse_result_name(static_cast<ParseResult>(r)), rep.parse.by_result[r]);
      const auto& t = rep.table;
      spdlog::info("model {} ({}), window {}", model->id(), a->model, window_spec_string(model->info().picture.window));
      spdlog::info("packets {} parse:{}{}", rep.packets, parse,
                   rep.clock_backwards ? fmt::format(" clock_backwards={}", rep.clock_backwards) : "");
      spdlog::info("flows created={} expired={} rejected_full={} flushed={}", t.flows_created, t.flows_expired,
                   t.flows_rejected_full, t.flows_flushed);
      spdlog::info("windows closed={} emitted={} too_small={} over_limit={} no_records={} decimated={}", t.windows_closed,
                   t.windows_emitted, t.windows_too_small, t.windows_over_limit, t.windows_no_records, t.windows_decimated);
      // Packets of flows the table had no room for get no verdict: say so loudly, with the fix.
      if (t.flows_rejected_full > 0)
        spdlog::warn("{} packets of new flows were not classified: the flow table was full (--flow-capacity {}); "
                     "raise --flow-capacity above the capture's concurrent flows",
                     t.flows_rejected_full, a->capacity);
      std::string per_class;
      for (size_t c = 0; c < rep.per_class.size(); ++c)
        per_class += fmt::format(" {}={}", model->info().classes[c], rep.per_class[c]);
      spdlog::info("verdicts {}:{}{} in {:.3f} s", rep.windows_classified, per_class,
                   a->threshold > 0 ? fmt::format(" unknown={}", rep.windows_unknown) : "", rep.seconds);
      if (exporter) {
        const ExportStats es = exporter->stats();
        spdlog::info("ipfix {}: flow records {} sent {} in {} messages | send errors {} lost {} buffer-full {} reconnects {}",
                     exporter->collector(), rep.flow_records, es.flow_records, es.messages, es.send_errors,
                     es.records_lost_send, es.records_dropped_buffer, es.reconnects);
      }
      return incomplete && !a->tolerate ? 3 : 0;
    };
  });
}

}  // namespace flowpic::cli
