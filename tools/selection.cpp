#include "tools/selection.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

namespace flowpic {

uint32_t capture_fold(const std::string& capture, uint32_t folds, uint64_t salt) {
  uint64_t h = 1469598103934665603ull ^ salt;
  for (unsigned char c : capture) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 33;  // FNV's low bits are weak for short names: mix before the modulo
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return folds ? static_cast<uint32_t>(h % folds) : 0;
}

std::string window_source(const WindowDataset& ds, uint32_t source_index) {
  const std::string kind = ds.origin.value("kind", "");
  if (kind != "corpus") return kind.empty() ? std::string("dataset") : kind;
  const std::string& s = ds.sources.at(source_index);
  return s.substr(0, s.find('/'));
}

bool parse_fold(const std::string& text, uint32_t& fold, uint32_t& folds, std::string* err) {
  const size_t slash = text.find('/');
  auto fail = [&](const char* why) {
    if (err) *err = std::string(why) + " (expected K/N with 0 <= K < N, e.g. 0/5)";
    return false;
  };
  if (slash == std::string::npos) return fail("no '/'");
  try {
    size_t a = 0, b = 0;
    const unsigned long k = std::stoul(text.substr(0, slash), &a), n = std::stoul(text.substr(slash + 1), &b);
    if (a != slash || b != text.size() - slash - 1) return fail("not two whole numbers");
    if (n < 2 || n > 1000 || k >= n) return fail("out of range");
    fold = static_cast<uint32_t>(k);
    folds = static_cast<uint32_t>(n);
  } catch (const std::exception&) {
    return fail("not two whole numbers");
  }
  return true;
}

std::vector<uint32_t> select_windows(const WindowDataset& ds, const WindowSelection& sel) {
  if (sel.folds && sel.fold >= sel.folds) throw std::invalid_argument("fold " + std::to_string(sel.fold) + " of " + std::to_string(sel.folds));
  std::vector<std::string> source_of(ds.sources.size());
  std::set<std::string> present;
  for (uint32_t i = 0; i < ds.sources.size(); ++i) present.insert(source_of[i] = window_source(ds, i));
  for (const auto* list : {&sel.sources, &sel.exclude_sources})
    for (const auto& s : *list)
      if (!present.count(s)) {
        std::string known;
        for (const auto& p : present) known += (known.empty() ? "" : ", ") + p;
        throw std::invalid_argument("the dataset has no source '" + s + "' (it has: " + known + ")");
      }
  const std::set<std::string> names(ds.sources.begin(), ds.sources.end());
  for (const auto* list : {&sel.captures, &sel.exclude_captures})
    for (const auto& c : *list)
      if (!names.count(c)) throw std::invalid_argument("the dataset has no capture '" + c + "'");
  const std::set<std::string> keep(sel.sources.begin(), sel.sources.end()), drop(sel.exclude_sources.begin(), sel.exclude_sources.end());
  const std::set<std::string> keep_c(sel.captures.begin(), sel.captures.end()),
      drop_c(sel.exclude_captures.begin(), sel.exclude_captures.end());
  std::vector<uint8_t> capture_ok(ds.sources.size(), 0);
  for (uint32_t i = 0; i < ds.sources.size(); ++i) {
    bool ok = (keep.empty() || keep.count(source_of[i])) && !drop.count(source_of[i]) &&
              (keep_c.empty() || keep_c.count(ds.sources[i])) && !drop_c.count(ds.sources[i]);
    if (ok && sel.folds && sel.side != WindowSelection::Side::kAll) {
      const bool test = capture_fold(ds.sources[i], sel.folds) == sel.fold;
      ok = (sel.side == WindowSelection::Side::kTest) == test;
    }
    capture_ok[i] = ok;
  }
  std::vector<uint32_t> out;
  for (uint32_t w = 0; w < ds.windows.size(); ++w)
    if (capture_ok[ds.windows[w].source]) out.push_back(w);
  if (!sel.cap) return out;
  // Cap per (source, class): a seeded random subset, kept in dataset order.
  std::map<std::pair<std::string, int32_t>, std::vector<uint32_t>> groups;
  for (uint32_t w : out) groups[{source_of[ds.windows[w].source], ds.windows[w].label}].push_back(w);
  std::mt19937_64 rng(sel.seed * 0x9e3779b97f4a7c15ull + 7);
  std::vector<uint32_t> kept;
  for (auto& [key, v] : groups) {
    if (v.size() > sel.cap) {
      for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
      v.resize(sel.cap);
    }
    kept.insert(kept.end(), v.begin(), v.end());
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

}  // namespace flowpic
