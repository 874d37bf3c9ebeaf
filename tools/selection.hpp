// Which windows of a dataset an experiment uses: by source, by capture fold, capped per
// (source, class). Splits are by CAPTURE (WindowDataset::sources entry), never by window: every
// window of a capture lands on the same side, so no capture is on both sides of a split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/dataset.hpp"

namespace flowpic {

struct WindowSelection {
  enum class Side : uint8_t { kAll, kTrain, kTest };
  std::vector<std::string> sources;          // keep only these sources (empty = every source)
  std::vector<std::string> exclude_sources;  // leave these out (leave-one-source-out)
  std::vector<std::string> captures;         // keep only these captures (sources[] names, e.g. "ode-flow/val")
  std::vector<std::string> exclude_captures; // leave these captures out
  uint32_t folds = 0;                        // by-capture split into `folds` folds; 0 = no split
  uint32_t fold = 0;                         // the test fold (0..folds-1)
  Side side = Side::kAll;                    // kTest: captures of `fold`; kTrain: the others
  uint32_t cap = 0;                          // at most this many windows per (source, class); 0 = all
  uint64_t seed = 1;                         // which windows a cap keeps
};

// Fold of a capture: FNV-1a 64 of its name (with a salt, so the inner holdout folds differ from
// the outer test folds) mod folds. Stable across machines and runs.
uint32_t capture_fold(const std::string& capture, uint32_t folds, uint64_t salt = 0);

// "ode-flow/train" -> "ode-flow"; a dataset not made by `dataset corpus` has one source per
// capture name: its kind ("pcap", "ode-flow").
std::string window_source(const WindowDataset& ds, uint32_t source_index);

// Indices of the selected windows, in dataset order. Throws std::invalid_argument when a named
// source is not in the dataset or the fold is out of range.
std::vector<uint32_t> select_windows(const WindowDataset& ds, const WindowSelection& sel);

// Parses "k/n" (e.g. "0/5"). False with a reason.
bool parse_fold(const std::string& text, uint32_t& fold, uint32_t& folds, std::string* err);

}  // namespace flowpic
