#include "tools/pcap_dataset.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "tools/pipeline.hpp"
#include "tools/progress.hpp"

namespace flowpic {

std::vector<std::string> list_captures(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".pcap" || ext == ".pcapng" || ext == ".cap")) out.push_back(e.path().string());
  }
  if (ec) throw std::runtime_error(dir + ": cannot list: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

WindowDataset build_pcap_dataset(const std::vector<std::string>& pcaps, const PcapDatasetOptions& opt,
                           PcapDatasetReport* report) {
  PcapDatasetReport local;
  PcapDatasetReport& rep = report ? *report : local;

  // Windows are collected with their label text first; class indices are assigned at the end
  // (sorted names) so the dataset does not depend on capture order.
  WindowDataset ds;
  ds.window = opt.table.window;
  std::vector<std::string> window_labels;
  std::string pcap_name;
  bool pcap_has_labels = false;
  uint32_t source = 0;

  OfflinePipeline pipe(opt.table, [&](const WindowInfo& info, const PacketRecord* recs, uint32_t n, TimeNs) {
    ++rep.windows;
    const std::string* label = nullptr;
    if (!opt.per_pcap_label.empty()) label = &opt.per_pcap_label;
    else if (opt.labels && pcap_has_labels) label = opt.labels->find(pcap_name, info.key);
    if (!label) {
      ++rep.windows_unlabelled;
      return;
    }
    ds.add(info, recs, n, 0, source);
    window_labels.push_back(*label);
  });

  Progress bar("reading captures", pcaps.size(), " files");
  if (!opt.progress) Progress::set_enabled(false);
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& path : pcaps) {
    pcap_name = std::filesystem::path(path).filename().string();
    pcap_has_labels = opt.labels && opt.labels->has_pcap(pcap_name);
    if (opt.per_pcap_label.empty() && !pcap_has_labels) ++rep.pcaps_without_labels;
    source = static_cast<uint32_t>(ds.sources.size());
    ds.sources.push_back(pcap_name);
    const std::string warning = pipe.run_pcap_or_reason(path);
    if (!warning.empty()) rep.warnings.push_back(warning);
    bar.add(1, pcap_name);
  }
  bar.finish();
  Progress::set_enabled(true);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.pcaps = pipe.counters().pcaps;
  rep.packets = pipe.counters().packets;
  rep.parse = pipe.step_state().parse;
  rep.windows_too_small = pipe.table_counters().windows_too_small;

  assign_classes_by_name(ds, window_labels);
  return ds;
}

}  // namespace flowpic
