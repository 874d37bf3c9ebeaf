// flowpic dataset ode-flow | pcap
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "tools/class_map.hpp"
#include "tools/cli.hpp"
#include "tools/corpus.hpp"
#include "tools/dataset.hpp"
#include "tools/odeflow.hpp"
#include "tools/pcap_dataset.hpp"
#include "tools/selection.hpp"

namespace flowpic::cli {

namespace {

// Windows, flows and captures per class, to stdout.
void print_summary(const WindowDataset& ds) {
  std::vector<uint64_t> windows(ds.classes.size(), 0), packets(ds.classes.size(), 0);
  std::vector<std::set<std::pair<uint32_t, std::string>>> flows(ds.classes.size());
  std::vector<std::set<uint32_t>> sources(ds.classes.size());
  const bool keyed = ds.origin.value("kind", "") == "pcap";
  for (const auto& w : ds.windows) {
    ++windows[w.label];
    packets[w.label] += w.info.packets;
    if (keyed) flows[w.label].insert({w.source, std::string(reinterpret_cast<const char*>(&w.info.key), sizeof(FlowKey))});
    sources[w.label].insert(w.source);
  }
  size_t width = 5;
  for (const auto& c : ds.classes) width = std::max(width, c.size());
  std::printf("%-*s %9s %9s %9s %11s\n", static_cast<int>(width), "class", "windows", "flows", "captures", "packets");
  for (size_t c = 0; c < ds.classes.size(); ++c) {
    std::printf("%-*s %9llu %9s %9zu %11llu\n", static_cast<int>(width), ds.classes[c].c_str(),
                static_cast<unsigned long long>(windows[c]), keyed ? std::to_string(flows[c].size()).c_str() : "-",
                sources[c].size(), static_cast<unsigned long long>(packets[c]));
  }
  std::printf("%-*s %9zu\n", static_cast<int>(width), "total", ds.windows.size());
  if (ds.origin.value("kind", "") != "corpus") return;
  // Windows by source and class: what a leave-one-source-out run can test.
  std::map<std::string, std::vector<uint64_t>> by_source;
  for (const auto& w : ds.windows) {
    auto& row = by_source[window_source(ds, w.source)];
    row.resize(ds.classes.size());
    ++row[w.label];
  }
  std::printf("\n%-14s", "source");
  for (const auto& c : ds.classes) std::printf(" %*s", static_cast<int>(std::max<size_t>(c.size(), 8)), c.c_str());
  std::printf("\n");
  for (const auto& [src, row] : by_source) {
    std::printf("%-14s", src.c_str());
    for (size_t c = 0; c < ds.classes.size(); ++c)
      std::printf(" %*llu", static_cast<int>(std::max<size_t>(ds.classes[c].size(), 8)), static_cast<unsigned long long>(row[c]));
    std::printf("\n");
  }
}

// How captures are cut into windows: the options `dataset pcap` and `dataset corpus` share.
struct WindowingArgs {
  std::string window;
  uint32_t min_packets, max_windows, capacity = 1u << 16, min_ip_len = 0;
  std::string idle = "30s";
  std::string flows = "uni";
  void add_to(CLI::App* sub, const char* max_windows_help) {
    sub->add_option("--window", window, "window policy: count:PACKETS or time:SECONDS")->capture_default_str();
    sub->add_option("--flows", flows, "uni: a window holds one direction of a connection; bi: both, each packet "
                                      "marked initiator or responder (for two-channel pictures)")
        ->capture_default_str()
        ->check(CLI::IsMember({"uni", "bi"}));
    sub->add_option("--min-ip-len", min_ip_len, "packets with a shorter IP length enter no window (53: leave out TCP's "
                                                "pure ACKs, which fgnet's flows do not have); 0 = every packet")
        ->capture_default_str()
        ->check(CLI::Range(0u, 65535u));
    sub->add_option("--min-packets", min_packets, "windows with fewer packets are not kept")->capture_default_str()->check(CLI::Range(1u, 1000000u));
    sub->add_option("--max-windows", max_windows, max_windows_help)->capture_default_str();
    sub->add_option("--flow-capacity", capacity, "concurrent flows in the flow table")->capture_default_str()->check(CLI::Range(16u, 1u << 26));
    sub->add_option("--idle-timeout", idle, "a flow idle this long ends (e.g. 30s, 500ms)")->capture_default_str();
  }
  FlowTableConfig make() const {  // throws UsageError
    FlowTableConfig t;
    std::string err;
    if (!parse_window_spec(window, t.window, &err)) throw UsageError("--window: " + err);
    t.window.min_packets = min_packets;
    t.window.max_windows = max_windows;
    t.window.bidirectional = flows == "bi";
    t.window.min_ip_len = min_ip_len;
    t.capacity = capacity;
    t.idle_timeout_ns = parse_duration(idle, "--idle-timeout");
    const std::string cfg_err = t.validate();
    if (!cfg_err.empty()) throw UsageError("flow table: " + cfg_err);
    return t;
  }
};

}  // namespace

void add_dataset(CLI::App& app, Action* action) {
  auto* ds = app.add_subcommand("dataset", "build a labelled window dataset (ode-flow arrays or captures)");
  ds->require_subcommand(1);

  // --- ode-flow
  struct OdeArgs {
    std::string dir, split, out;
  };
  auto ode = std::make_shared<OdeArgs>();
  auto* o = ds->add_subcommand("ode-flow", "ODE-Flow ISCX arrays (20-packet windows, 5 classes) -> dataset");
  o->add_option("--data", ode->dir, "directory with ode_const_20_multiclass_reg_{x,y}_{train,val}.npy")
      ->required()
      ;
  o->add_option("--split", ode->split, "which split")->required()->check(CLI::IsMember({"train", "val"}));
  o->add_option("-o,--output", ode->out, "dataset file to write")->required();
  o->callback([action, ode] {
    *action = [ode] {
      WindowDataset d = load_odeflow(ode->dir, ode->split);
      d.origin["command"] = command_line();
      save_dataset(d, ode->out);
      spdlog::info("wrote {} windows of {} classes to {}", d.windows.size(), d.classes.size(), ode->out);
      print_summary(d);
      return 0;
    };
  });

  // --- corpus
  struct CorpusArgs {
    std::string data = "../shared/data", class_map = "corpus/class-map.csv", out, sources;
    bool raw_labels = false, keep_one_way = false;
    uint32_t max_captures = 0;
    WindowingArgs win{"count:20", 20, 100};
  };
  auto ca = std::make_shared<CorpusArgs>();
  auto* c = ds->add_subcommand("corpus",
      "every source of ../shared/data (ode-flow ndpi requet vca video-traffic trafficleak fgnet learnlive) -> one dataset, "
      "labels mapped by a versioned class map, each window keeping its source and capture");
  c->add_option("--data", ca->data, "the shared data directory (read its PROVENANCE.md)")->capture_default_str();
  c->add_option("--class-map", ca->class_map, "(source, raw label) -> class mapping file")->capture_default_str();
  c->add_flag("--raw-labels", ca->raw_labels, "keep the sources' raw labels as classes (application id: fgnet apps, nDPI category/app)");
  c->add_option("--sources", ca->sources, "comma-separated sources to import (default: all)");
  ca->win.add_to(c, "windows kept per flow (per connection with --flows bi), from its start (0 = all): a sampling cap, not kept by models");
  c->add_flag("--keep-one-way", ca->keep_one_way, "with --flows bi: keep ODE-Flow and Learn-Live windows, which hold one "
                                                 "direction only (their responder plane stays empty)");
  c->add_option("--max-captures", ca->max_captures, "captures (sessions, runs, traces) per source, for fgnet per app (0 = all)")->capture_default_str();
  c->add_option("-o,--output", ca->out, "dataset file to write")->required();
  c->callback([action, ca] {
    *action = [ca] {
      CorpusOptions opt;
      opt.table = ca->win.make();
      opt.data_dir = ca->data;
      opt.max_captures = ca->max_captures;
      opt.keep_one_way = ca->keep_one_way;
      if (opt.keep_one_way && !opt.table.window.bidirectional)
        throw UsageError("--keep-one-way only means something with --flows bi (one-direction corpora keep every source)");
      opt.progress = progress_enabled();
      std::unique_ptr<ClassMap> map;
      if (!ca->raw_labels) {
        map = std::make_unique<ClassMap>(ClassMap::load(ca->class_map));
        opt.map = map.get();
      }
      std::vector<std::string> sources;
      if (ca->sources.empty()) {
        sources = corpus_source_names();
      } else {
        std::string item;
        std::stringstream ss(ca->sources);
        while (std::getline(ss, item, ','))
          if (!item.empty()) sources.push_back(item);
      }
      std::vector<SourceReport> reps;
      WindowDataset d;
      try {
        d = build_corpus(sources, opt, &reps);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--sources: ") + e.what());
      }
      nlohmann::json per_source = nlohmann::json::object();
      for (const auto& r : reps) {
        for (const auto& w : r.warnings) spdlog::warn("{}", w);
        spdlog::info("{}: {} captures, {} packets, {} windows: {} kept, {} dropped by the map, {} unmapped, {} unlabelled ({:.1f} s)",
                     r.name, r.captures, r.packets, r.windows, r.kept, r.dropped_by_map, r.unmapped, r.unlabelled, r.seconds);
        per_source[r.name] = {{"captures", r.captures}, {"packets", r.packets}, {"windows", r.windows}, {"kept", r.kept},
                              {"dropped_by_map", r.dropped_by_map}, {"unmapped", r.unmapped}, {"unlabelled", r.unlabelled},
                              {"warnings", r.warnings.size()}, {"flow_identity", r.flow_identity}};
      }
      d.origin = {{"kind", "corpus"},
                  {"data", ca->data},
                  {"class_map", map ? nlohmann::json({{"path", map->path()}, {"version", map->version()},
                                                      {"crc32", fmt::format("{:08x}", map->crc32())}})
                                    : nlohmann::json("raw labels")},
                  {"max_windows_per_flow", ca->win.max_windows},
                  {"max_captures", ca->max_captures},
                  {"keep_one_way", ca->keep_one_way},
                  {"idle_timeout_ns", opt.table.idle_timeout_ns},
                  {"sources", per_source},
                  {"command", command_line()}};
      save_dataset(d, ca->out);
      spdlog::info("wrote {} windows of {} classes from {} captures to {}", d.windows.size(), d.classes.size(),
                   d.sources.size(), ca->out);
      print_summary(d);
      return 0;
    };
  });

  // --- pcap
  struct PcapArgs {
    std::vector<std::string> pcaps;
    std::string labels, label_column = "category", min_confidence, per_pcap_label, data_dir, out;
    WindowingArgs win{"time:15", 10, 0};
  };
  auto pa = std::make_shared<PcapArgs>();
  auto* p = ds->add_subcommand("pcap", "captures + per-flow labels (nDPI flows_labels.csv) or one label per capture -> dataset");
  p->add_option("pcaps", pa->pcaps, "capture files (pcap, pcapng)");
  p->add_option("--data-dir", pa->data_dir, "directory holding pcap/ and flows_labels.csv (e.g. ../shared/data/ndpi)")
      ;
  p->add_option("--labels", pa->labels, "nDPI flows_labels.csv");
  p->add_option("--label-column", pa->label_column, "label to use from the CSV")
      ->capture_default_str()
      ->check(CLI::IsMember({"category", "app"}));
  p->add_option("--min-confidence", pa->min_confidence, "keep only CSV rows whose confidence is exactly this (e.g. DPI)");
  p->add_option("--per-pcap-label", pa->per_pcap_label, "label every flow of every capture with NAME (no CSV)");
  pa->win.add_to(p, "windows kept per flow (0 = all)");
  p->add_option("-o,--output", pa->out, "dataset file to write")->required();
  p->callback([action, pa] {
    *action = [pa] {
      PcapDatasetOptions opt;
      opt.table = pa->win.make();

      std::vector<std::string> pcaps = pa->pcaps;
      std::string labels = pa->labels;
      if (!pa->data_dir.empty()) {
        const auto dir = std::filesystem::path(pa->data_dir);
        if (pcaps.empty()) pcaps = list_captures((dir / "pcap").string());
        if (labels.empty() && pa->per_pcap_label.empty()) labels = (dir / "flows_labels.csv").string();
      }
      if (pcaps.empty()) throw UsageError("no captures: give PCAP files or --data-dir");
      if (labels.empty() == pa->per_pcap_label.empty())
        throw UsageError("give exactly one of --labels (or --data-dir) and --per-pcap-label");

      std::unique_ptr<LabelIndex> index;
      if (!labels.empty()) {
        std::vector<std::string> skipped;
        const auto rows = read_ndpi_labels(labels, &skipped);
        for (const auto& s : skipped) spdlog::warn("{}", s);
        index = std::make_unique<LabelIndex>(
            rows, pa->label_column == "app" ? LabelColumn::kApp : LabelColumn::kCategory, pa->min_confidence);
        spdlog::info("{}: {} labelled flows ({} rows filtered by label/confidence, {} ambiguous)", labels,
                     index->size(), index->rows_filtered(), index->ambiguous());
        opt.labels = index.get();
      }
      opt.per_pcap_label = pa->per_pcap_label;
      opt.progress = progress_enabled();

      PcapDatasetReport rep;
      WindowDataset d = build_pcap_dataset(pcaps, opt, &rep);
      for (const auto& w : rep.warnings) spdlog::warn("{}", w);
      nlohmann::json parse = nlohmann::json::object();
      for (size_t r = 0; r < kParseResultCount; ++r)
        if (rep.parse.by_result[r]) parse[parse_result_name(static_cast<ParseResult>(r))] = rep.parse.by_result[r];
      d.origin = {{"kind", "pcap"},
                  {"labels", labels.empty() ? nlohmann::json(nullptr) : nlohmann::json(labels)},
                  {"label_column", pa->per_pcap_label.empty() ? pa->label_column : "per-pcap"},
                  {"min_confidence", pa->min_confidence},
                  {"per_pcap_label", pa->per_pcap_label},
                  {"idle_timeout_ns", opt.table.idle_timeout_ns},
                  {"flow_capacity", opt.table.capacity},
                  {"packets", rep.packets},
                  {"parse", parse},
                  {"windows_qualifying", rep.windows},
                  {"windows_unlabelled", rep.windows_unlabelled},
                  {"windows_too_small", rep.windows_too_small},
                  {"pcaps_without_labels", rep.pcaps_without_labels},
                  {"command", command_line()}};
      save_dataset(d, pa->out);
      spdlog::info("read {} packets from {} captures in {:.3f} s ({:.2f} M packets/s, one core)", rep.packets,
                   rep.pcaps, rep.seconds, rep.packets_per_second() / 1e6);
      spdlog::info("{} windows with >= {} packets: {} labelled, {} unlabelled (skipped); {} too small",
                   rep.windows, pa->win.min_packets, d.windows.size(), rep.windows_unlabelled, rep.windows_too_small);
      if (rep.pcaps_without_labels && !labels.empty())
        spdlog::info("{} captures have no labelled flow in {}", rep.pcaps_without_labels, labels);
      spdlog::info("wrote {} windows of {} classes to {}", d.windows.size(), d.classes.size(), pa->out);
      print_summary(d);
      return 0;
    };
  });
}

}  // namespace flowpic::cli
