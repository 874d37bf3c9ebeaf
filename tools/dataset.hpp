// flowpic dataset files: labelled WINDOWS (not pictures), so the picture config
// (resolution, time axis, ...) is chosen at train time. Format: docs/dataset-format.md.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/window.hpp"
#include "flowtable/flow_table.hpp"

namespace flowpic {

struct DatasetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DatasetWindow {
  WindowInfo info;          // info.n_records records start at `first_record` in WindowDataset::records
  uint64_t first_record = 0;
  int32_t label = 0;        // index into WindowDataset::classes
  uint32_t source = 0;      // index into WindowDataset::sources
};

struct WindowDataset {
  static constexpr uint32_t kFormatVersion = 2;  // 2: records carry the direction (size word bit 15); 1 is still read

  std::vector<std::string> classes;
  std::vector<std::string> sources;     // where windows came from (pcap basenames, .npy files)
  WindowPolicy window;                  // how the windows were cut
  nlohmann::json origin = nlohmann::json::object();  // kind, split, labels file, command, counters
  std::vector<DatasetWindow> windows;
  std::vector<PacketRecord> records;

  // Appends a window (copies its records). label < classes.size(), source < sources.size().
  void add(const WindowInfo& info, const PacketRecord* recs, uint32_t n, int32_t label, uint32_t source);
  const PacketRecord* records_of(const DatasetWindow& w) const noexcept { return records.data() + w.first_record; }
  std::vector<uint64_t> class_counts() const;
  // Index of a class name, -1 when absent.
  int class_index(const std::string& name) const noexcept;
};

// Classes = the distinct names of `labels` (one per window, in window order), sorted; each
// window's label becomes its name's index. So a dataset does not depend on input order.
void assign_classes_by_name(WindowDataset& ds, const std::vector<std::string>& labels);

// Atomic write (temp file + rename). Throws DatasetError.
void save_dataset(const WindowDataset& ds, const std::string& path);
std::string dataset_to_bytes(const WindowDataset& ds);
// Reads and validates (magic, version, CRC32, sizes, every index). Throws DatasetError
// with "FILE: reason".
WindowDataset load_dataset(const std::string& path);
WindowDataset dataset_from_bytes(const std::string& bytes, const std::string& what);
// Only the JSON header (cheap: `flowpic info`). Validates magic, version and header.
nlohmann::json read_dataset_header(const std::string& path);
bool looks_like_dataset(const std::string& path);  // magic check only

// Window policy text: "time:15" (seconds, may be fractional), "count:20".
// Returns false with a reason in *err.
bool parse_window_spec(const std::string& text, WindowPolicy& out, std::string* err);
std::string window_spec_string(const WindowPolicy& w);
nlohmann::json window_policy_json(const WindowPolicy& w);
WindowPolicy window_policy_from_json(const nlohmann::json& j);  // throws DatasetError

}  // namespace flowpic
