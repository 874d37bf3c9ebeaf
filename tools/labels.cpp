#include "tools/labels.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace flowpic {

bool l4_from_name(std::string_view name, uint8_t& proto) noexcept {
  struct Entry {
    const char* name;
    uint8_t proto;
  };
  static constexpr Entry kNames[] = {{"TCP", 6},   {"UDP", 17},   {"ICMP", 1},  {"ICMPV6", 58},
                                     {"IGMP", 2},  {"ESP", 50},   {"AH", 51},   {"GRE", 47},
                                     {"OSPF", 89}, {"PIM", 103},  {"PGM", 113}, {"SCTP", 132},
                                     {"VRRP", 112}};
  for (const auto& e : kNames)
    if (name == e.name) {
      proto = e.proto;
      return true;
    }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec != std::errc() || p != name.data() + name.size() || name.empty() || v > 255) return false;
  proto = static_cast<uint8_t>(v);
  return true;
}

bool parse_endpoint(std::string_view text, uint8_t addr[16], uint8_t& family, uint16_t& port) noexcept {
  std::memset(addr, 0, 16);
  std::string_view host, port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    family = 6;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    family = 4;
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port_text.empty() || p > 65535)
    return false;
  port = static_cast<uint16_t>(p);
  char buf[64];
  if (host.empty() || host.size() >= sizeof buf) return false;
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  return inet_pton(family == 4 ? AF_INET : AF_INET6, buf, addr) == 1;
}

namespace {

std::vector<std::string_view> split_csv_line(std::string_view line) {
  // flows_labels.csv has no quoted fields (checked on load: a quote is an error).
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::vector<NdpiFlowRow> parse_ndpi_labels(std::string_view text, const std::string& what,
                                           std::vector<std::string>* skipped) {
  std::vector<NdpiFlowRow> rows;
  int line_no = 0;
  size_t pos = 0;
  int c_pcap = -1, c_idx = -1, c_l4 = -1, c_src = -1, c_dst = -1, c_app = -1, c_cat = -1, c_conf = -1;
  size_t ncols = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto fail = [&](const std::string& why) {
      return LabelError(what + ":" + std::to_string(line_no) + ": " + why);
    };
    if (line_no == 1) {
      auto cols = split_csv_line(line);
      ncols = cols.size();
      for (size_t i = 0; i < cols.size(); ++i) {
        const int c = static_cast<int>(i);
        if (cols[i] == "pcap") c_pcap = c;
        else if (cols[i] == "flow_idx") c_idx = c;
        else if (cols[i] == "l4") c_l4 = c;
        else if (cols[i] == "src") c_src = c;
        else if (cols[i] == "dst") c_dst = c;
        else if (cols[i] == "app") c_app = c;
        else if (cols[i] == "category") c_cat = c;
        else if (cols[i] == "confidence") c_conf = c;
      }
      const char* names[] = {"pcap", "flow_idx", "l4", "src", "dst", "app", "category", "confidence"};
      const int idx[] = {c_pcap, c_idx, c_l4, c_src, c_dst, c_app, c_cat, c_conf};
      for (int i = 0; i < 8; ++i)
        if (idx[i] < 0) throw fail(std::string("header lacks the column '") + names[i] + "' (is this nDPI's flows_labels.csv?)");
      continue;
    }
    if (line.empty()) continue;
    if (line.find('"') != std::string_view::npos) throw fail("quoted fields are not supported");
    auto cols = split_csv_line(line);
    if (cols.size() != ncols)
      throw fail("expected " + std::to_string(ncols) + " columns, found " + std::to_string(cols.size()));
    NdpiFlowRow r;
    r.line = line_no;
    r.pcap = std::string(cols[c_pcap]);
    if (r.pcap.empty()) throw fail("empty pcap name");
    auto idx_text = cols[c_idx];
    if (std::from_chars(idx_text.data(), idx_text.data() + idx_text.size(), r.flow_idx).ec != std::errc())
      throw fail("bad flow_idx '" + std::string(idx_text) + "'");
    if (!l4_from_name(cols[c_l4], r.proto)) throw fail("unknown l4 protocol '" + std::string(cols[c_l4]) + "'");
    uint8_t fa = 0, fb = 0;
    std::string bad;
    if (!parse_endpoint(cols[c_src], r.a_addr, fa, r.a_port))
      bad = "bad src endpoint '" + std::string(cols[c_src]) + "'";
    else if (!parse_endpoint(cols[c_dst], r.b_addr, fb, r.b_port))
      bad = "bad dst endpoint '" + std::string(cols[c_dst]) + "'";
    else if (fa != fb)
      bad = "src and dst are of different address families";
    if (!bad.empty()) {
      if (skipped) skipped->push_back(what + ":" + std::to_string(line_no) + ": " + bad + " (row skipped)");
      continue;
    }
    r.family = fa;
    r.app = std::string(cols[c_app]);
    r.category = std::string(cols[c_cat]);
    r.confidence = std::string(cols[c_conf]);
    rows.push_back(std::move(r));
  }
  if (line_no == 0) throw LabelError(what + ": empty file");
  return rows;
}

std::vector<NdpiFlowRow> read_ndpi_labels(const std::string& path, std::vector<std::string>* skipped) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LabelError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_ndpi_labels(ss.str(), path, skipped);
}

std::string LabelIndex::join_key(const std::string& pcap, uint8_t proto, uint8_t family, const uint8_t* a,
                                 uint16_t ap, const uint8_t* b, uint16_t bp) {
  // Unordered pair: put the smaller (address, port) first.
  uint8_t ea[18], eb[18];
  std::memcpy(ea, a, 16);
  ea[16] = static_cast<uint8_t>(ap >> 8);
  ea[17] = static_cast<uint8_t>(ap);
  std::memcpy(eb, b, 16);
  eb[16] = static_cast<uint8_t>(bp >> 8);
  eb[17] = static_cast<uint8_t>(bp);
  const bool swap = std::memcmp(ea, eb, 18) > 0;
  std::string k = pcap;
  k += '\0';
  k += static_cast<char>(proto);
  k += static_cast<char>(family);
  k.append(reinterpret_cast<const char*>(swap ? eb : ea), 18);
  k.append(reinterpret_cast<const char*>(swap ? ea : eb), 18);
  return k;
}

LabelIndex::LabelIndex(const std::vector<NdpiFlowRow>& rows, LabelColumn column, const std::string& min_confidence) {
  for (const auto& r : rows) {
    const std::string label = column == LabelColumn::kCategory ? r.category
                              : column == LabelColumn::kApp    ? r.app
                              : r.category.empty()             ? std::string()
                                                               : r.category + "/" + r.app;
    if (label.empty() || (!min_confidence.empty() && r.confidence != min_confidence)) {
      ++rows_filtered_;
      continue;
    }
    ++rows_used_;
    pcaps_[r.pcap] = 1;
    auto key = join_key(r.pcap, r.proto, r.family, r.a_addr, r.a_port, r.b_addr, r.b_port);
    auto [it, inserted] = map_.emplace(key, label);
    if (!inserted && !it->second.empty() && it->second != label) {
      it->second.clear();  // same endpoints, two labels: trust neither
      ++ambiguous_;
    }
  }
}

const std::string* LabelIndex::find(const std::string& pcap_basename, const FlowKey& key) const {
  if (key.flags & FlowKey::kFlagFragment) return nullptr;  // no ports: cannot be joined safely
  auto it = map_.find(join_key(pcap_basename, key.proto, key.family, key.src, key.sport, key.dst, key.dport));
  if (it == map_.end() || it->second.empty()) return nullptr;
  return &it->second;
}

}  // namespace flowpic
