// Per-flow labels from nDPI's flows_labels.csv (see ../shared/data/PROVENANCE.md) and the
// join of a unidirectional FlowKey to its bidirectional nDPI flow.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/flow_key.hpp"

namespace flowpic {

struct LabelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One row of flows_labels.csv (the columns flowpic uses).
struct NdpiFlowRow {
  std::string pcap;        // capture file name (basename)
  int flow_idx = 0;
  uint8_t proto = 0;       // IP protocol number from the l4 column
  uint8_t family = 0;      // 4 or 6
  uint8_t a_addr[16] = {}; // src endpoint
  uint16_t a_port = 0;
  uint8_t b_addr[16] = {}; // dst endpoint
  uint16_t b_port = 0;
  std::string app;         // nDPI application ("Zoom", "1kxun", ...)
  std::string category;    // nDPI category ("VoIP", "Video", ...); empty = Unknown
  std::string confidence;  // "DPI", "Match by port", ...
  int line = 0;            // line in the CSV (1 = header)
};

// "TCP" -> 6, "UDP" -> 17, "ICMPV6" -> 58, "47" -> 47, ...; false when unknown.
bool l4_from_name(std::string_view name, uint8_t& proto) noexcept;
// "1.2.3.4:80" or "[2001:db8::1]:443" -> address bytes (IPv4 in the first 4), family, port.
bool parse_endpoint(std::string_view text, uint8_t addr[16], uint8_t& family, uint16_t& port) noexcept;

// Reads the CSV. Throws LabelError("FILE:LINE: reason") on a missing column, a wrong column
// count or a bad number. Rows whose endpoints are not valid addresses (nDPI prints a few IPv6
// addresses wrongly, e.g. "[2600:1901::7a0b::]:443") cannot be joined: they are skipped and,
// when `skipped` is given, listed there as "FILE:LINE: reason".
std::vector<NdpiFlowRow> read_ndpi_labels(const std::string& path, std::vector<std::string>* skipped = nullptr);
std::vector<NdpiFlowRow> parse_ndpi_labels(std::string_view text, const std::string& what,
                                           std::vector<std::string>* skipped = nullptr);

// kCategoryApp: "category/app" (the corpus's nDPI raw label; rows without a category are filtered).
enum class LabelColumn { kCategory, kApp, kCategoryApp };

// Lookup from (pcap basename, protocol, unordered endpoint pair) to a label. Both directions
// of a flow get its label. Keys seen with two different labels are ambiguous and dropped.
class LabelIndex {
 public:
  // Keeps rows whose label column is non-empty and, when min_confidence is non-empty,
  // whose confidence equals it exactly.
  LabelIndex(const std::vector<NdpiFlowRow>& rows, LabelColumn column, const std::string& min_confidence);

  // Label of the flow `key` seen in capture `pcap_basename`, or nullptr.
  const std::string* find(const std::string& pcap_basename, const FlowKey& key) const;

  size_t size() const noexcept { return map_.size(); }
  size_t rows_used() const noexcept { return rows_used_; }
  size_t rows_filtered() const noexcept { return rows_filtered_; }  // confidence / empty label
  size_t ambiguous() const noexcept { return ambiguous_; }
  bool has_pcap(const std::string& pcap_basename) const { return pcaps_.count(pcap_basename) != 0; }

 private:
  static std::string join_key(const std::string& pcap, uint8_t proto, uint8_t family, const uint8_t* a,
                              uint16_t ap, const uint8_t* b, uint16_t bp);
  std::unordered_map<std::string, std::string> map_;  // join key -> label ("" = ambiguous)
  std::unordered_map<std::string, int> pcaps_;
  size_t rows_used_ = 0, rows_filtered_ = 0, ambiguous_ = 0;
};

}  // namespace flowpic
