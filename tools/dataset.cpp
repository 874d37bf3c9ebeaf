#include "tools/dataset.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <map>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace flowpic {

static_assert(std::endian::native == std::endian::little, "dataset files are written little-endian");

namespace {

constexpr char kMagic[8] = {'F', 'P', 'D', 'S', '\r', '\n', 0x1a, '\n'};
constexpr size_t kPreamble = 16;      // magic, version, header length
constexpr size_t kWindowBytes = 104;  // one window entry on disk
constexpr size_t kRecordBytes = 8;

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint32_t crc32_of(const char* data, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    c = crc32(c, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DatasetError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw DatasetError(path + ": read error");
  return ss.str();
}

}  // namespace

void WindowDataset::add(const WindowInfo& info, const PacketRecord* recs, uint32_t n, int32_t label, uint32_t source) {
  DatasetWindow w;
  w.info = info;
  w.info.n_records = n;
  w.first_record = records.size();
  w.label = label;
  w.source = source;
  records.insert(records.end(), recs, recs + n);
  windows.push_back(w);
}

void assign_classes_by_name(WindowDataset& ds, const std::vector<std::string>& labels) {
  std::vector<std::string> names = labels;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  ds.classes = names;
  std::map<std::string, int32_t> index;
  for (size_t i = 0; i < names.size(); ++i) index[names[i]] = static_cast<int32_t>(i);
  for (size_t i = 0; i < ds.windows.size() && i < labels.size(); ++i) ds.windows[i].label = index[labels[i]];
}

std::vector<uint64_t> WindowDataset::class_counts() const {
  std::vector<uint64_t> c(classes.size(), 0);
  for (const auto& w : windows)
    if (w.label >= 0 && static_cast<size_t>(w.label) < c.size()) ++c[w.label];
  return c;
}

int WindowDataset::class_index(const std::string& name) const noexcept {
  for (size_t i = 0; i < classes.size(); ++i)
    if (classes[i] == name) return static_cast<int>(i);
  return -1;
}

bool parse_window_spec(const std::string& text, WindowPolicy& out, std::string* err) {
  auto fail = [&](const std::string& why) {
    if (err) *err = "bad window '" + text + "': " + why + " (want time:SECONDS or count:PACKETS)";
    return false;
  };
  const auto colon = text.find(':');
  if (colon == std::string::npos) return fail("no ':'");
  const std::string kind = text.substr(0, colon), value = text.substr(colon + 1);
  if (value.empty()) return fail("no value");
  if (kind == "time") {
    double s = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), s);
    if (ec != std::errc() || p != value.data() + value.size() || !(s > 0) || s > 86400)
      return fail("seconds must be a number in (0, 86400]");
    out.kind = WindowPolicy::Kind::kTime;
    out.length_ns = seconds_to_ns(s);
    return true;
  }
  if (kind == "count") {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size() || n < 1 || n > 1000000)
      return fail("packets must be an integer in [1, 1000000]");
    out.kind = WindowPolicy::Kind::kCount;
    out.packets = n;
    return true;
  }
  return fail("unknown kind '" + kind + "'");
}

std::string window_spec_string(const WindowPolicy& w) {
  if (w.kind == WindowPolicy::Kind::kCount) return "count:" + std::to_string(w.packets);
  char buf[64];
  std::snprintf(buf, sizeof buf, "time:%g", static_cast<double>(w.length_ns) / 1e9);
  return buf;
}

nlohmann::json window_policy_json(const WindowPolicy& w) {
  nlohmann::json j;
  j["kind"] = w.kind == WindowPolicy::Kind::kCount ? "count" : "time";
  j["length_ns"] = w.length_ns;
  j["packets"] = w.packets;
  j["min_packets"] = w.min_packets;
  j["max_windows"] = w.max_windows;
  j["flows"] = w.bidirectional ? "bi" : "uni";
  if (w.min_ip_len) j["min_ip_len"] = w.min_ip_len;  // absent = 0 (files before it read the same)
  return j;
}

WindowPolicy window_policy_from_json(const nlohmann::json& j) {
  try {
    WindowPolicy w;
    const std::string kind = j.at("kind").get<std::string>();
    if (kind == "count") w.kind = WindowPolicy::Kind::kCount;
    else if (kind == "time") w.kind = WindowPolicy::Kind::kTime;
    else throw DatasetError("window kind '" + kind + "' is neither count nor time");
    w.length_ns = j.at("length_ns").get<uint64_t>();
    w.packets = j.at("packets").get<uint32_t>();
    w.min_packets = j.at("min_packets").get<uint32_t>();
    w.max_windows = j.at("max_windows").get<uint32_t>();
    const std::string flows = j.value("flows", std::string("uni"));  // absent in version 1 files
    if (flows != "uni" && flows != "bi") throw DatasetError("window flows '" + flows + "' is neither uni nor bi");
    w.bidirectional = flows == "bi";
    w.min_ip_len = j.value("min_ip_len", 0u);
    if (w.min_ip_len > 65535) throw DatasetError("window min_ip_len " + std::to_string(w.min_ip_len) + " is over 65535");
    return w;
  } catch (const nlohmann::json::exception& e) {
    throw DatasetError(std::string("window policy: ") + e.what());
  }
}

std::string dataset_to_bytes(const WindowDataset& ds) {
  nlohmann::json h;
  h["format"] = "flowpic-dataset";
  h["version"] = WindowDataset::kFormatVersion;
  h["classes"] = ds.classes;
  h["sources"] = ds.sources;
  h["window"] = window_policy_json(ds.window);
  nlohmann::json per_class = nlohmann::json::object();
  auto counts = ds.class_counts();
  for (size_t i = 0; i < ds.classes.size(); ++i) per_class[ds.classes[i]] = counts[i];
  h["counts"] = {{"windows", ds.windows.size()}, {"records", ds.records.size()}, {"per_class", per_class}};
  h["origin"] = ds.origin;
  const std::string header = h.dump();

  std::string out;
  out.reserve(kPreamble + header.size() + 16 + ds.windows.size() * kWindowBytes + ds.records.size() * kRecordBytes + 4);
  out.append(kMagic, sizeof kMagic);
  put<uint32_t>(out, WindowDataset::kFormatVersion);
  put<uint32_t>(out, static_cast<uint32_t>(header.size()));
  out += header;
  put<uint64_t>(out, ds.windows.size());
  put<uint64_t>(out, ds.records.size());
  for (const auto& w : ds.windows) {
    const size_t before = out.size();
    out.append(reinterpret_cast<const char*>(&w.info.key), sizeof(FlowKey));
    put<uint64_t>(out, w.info.start_ns);
    put<uint64_t>(out, w.info.end_ns);
    put<uint64_t>(out, w.info.first_ns);
    put<uint64_t>(out, w.info.last_ns);
    put<uint64_t>(out, w.info.bytes);
    put<uint32_t>(out, w.info.packets);
    put<uint32_t>(out, w.info.index);
    put<uint32_t>(out, w.info.n_records);
    put<int32_t>(out, w.label);
    put<uint32_t>(out, w.source);
    put<uint8_t>(out, static_cast<uint8_t>(w.info.reason));
    out.append(3, '\0');
    if (out.size() - before != kWindowBytes) throw DatasetError("internal: window entry size");
  }
  for (const auto& r : ds.records) {
    put<uint32_t>(out, r.t_us);
    put<uint16_t>(out, r.size_word());
    put<uint16_t>(out, r.weight);
  }
  put<uint32_t>(out, crc32_of(out.data(), out.size()));
  return out;
}

void save_dataset(const WindowDataset& ds, const std::string& path) {
  const std::string bytes = dataset_to_bytes(ds);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw DatasetError(path + ": cannot write: " + std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw DatasetError(path + ": write failed: " + std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw DatasetError(path + ": cannot rename into place: " + ec.message());
  }
}

namespace {

// Checks the preamble and parses the header; returns the header and its end offset.
nlohmann::json parse_header(const std::string& bytes, const std::string& what, size_t* header_end) {
  auto fail = [&](const std::string& why) { return DatasetError(what + ": " + why); };
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw fail("not a flowpic dataset (bad magic)");
  if (bytes.size() < kPreamble) throw fail("truncated in the preamble");
  const auto version = get<uint32_t>(bytes.data() + 8);
  if (version != WindowDataset::kFormatVersion && version != 1)
    throw fail("dataset format version " + std::to_string(version) + " is not supported (this flowpic reads 1 and " +
               std::to_string(WindowDataset::kFormatVersion) + ")");
  const auto hlen = get<uint32_t>(bytes.data() + 12);
  if (bytes.size() - kPreamble < hlen) throw fail("truncated in the JSON header");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(bytes.begin() + kPreamble, bytes.begin() + kPreamble + hlen);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("corrupt JSON header: ") + e.what());
  }
  if (!h.is_object() || h.value("format", "") != "flowpic-dataset") throw fail("header is not a flowpic-dataset header");
  *header_end = kPreamble + hlen;
  return h;
}

}  // namespace

WindowDataset dataset_from_bytes(const std::string& bytes, const std::string& what) {
  auto fail = [&](const std::string& why) { return DatasetError(what + ": " + why); };
  size_t pos = 0;
  nlohmann::json h = parse_header(bytes, what, &pos);
  const auto version = get<uint32_t>(bytes.data() + 8);  // checked by parse_header: 1 or kFormatVersion
  // CRC before anything else is trusted: a flipped byte anywhere is reported as such.
  if (bytes.size() < pos + 16 + 4) throw fail("truncated after the header");
  const auto stored_crc = get<uint32_t>(bytes.data() + bytes.size() - 4);
  const auto n_windows = get<uint64_t>(bytes.data() + pos);
  const auto n_records = get<uint64_t>(bytes.data() + pos + 8);
  pos += 16;
  const size_t body = bytes.size() - 4 - pos;
  if (n_windows > body / kWindowBytes || n_records > body / kRecordBytes ||
      n_windows * kWindowBytes + n_records * kRecordBytes != body)
    throw fail("size mismatch: " + std::to_string(n_windows) + " windows and " + std::to_string(n_records) +
               " records need " + std::to_string(n_windows * kWindowBytes + n_records * kRecordBytes) +
               " bytes, file has " + std::to_string(body) + " (truncated or corrupt)");
  const uint32_t crc = crc32_of(bytes.data(), bytes.size() - 4);
  if (crc != stored_crc) throw fail("checksum mismatch (file is corrupt)");

  WindowDataset ds;
  uint64_t header_windows = 0, header_records = 0;
  try {
    ds.classes = h.at("classes").get<std::vector<std::string>>();
    ds.sources = h.at("sources").get<std::vector<std::string>>();
    ds.window = window_policy_from_json(h.at("window"));
    ds.origin = h.value("origin", nlohmann::json::object());
    header_windows = h.at("counts").at("windows").get<uint64_t>();
    header_records = h.at("counts").at("records").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("bad header: ") + e.what());
  } catch (const DatasetError& e) {
    throw fail(e.what());
  }
  if (header_windows != n_windows || header_records != n_records) throw fail("header counts disagree with the data");
  if (ds.classes.empty()) throw fail("no classes");

  ds.windows.resize(n_windows);
  uint64_t next_record = 0;
  for (uint64_t i = 0; i < n_windows; ++i) {
    const char* p = bytes.data() + pos + i * kWindowBytes;
    DatasetWindow& w = ds.windows[i];
    std::memcpy(&w.info.key, p, sizeof(FlowKey));
    p += sizeof(FlowKey);
    w.info.start_ns = get<uint64_t>(p);
    w.info.end_ns = get<uint64_t>(p + 8);
    w.info.first_ns = get<uint64_t>(p + 16);
    w.info.last_ns = get<uint64_t>(p + 24);
    w.info.bytes = get<uint64_t>(p + 32);
    w.info.packets = get<uint32_t>(p + 40);
    w.info.index = get<uint32_t>(p + 44);
    w.info.n_records = get<uint32_t>(p + 48);
    w.label = get<int32_t>(p + 52);
    w.source = get<uint32_t>(p + 56);
    const uint8_t reason = static_cast<uint8_t>(p[60]);
    if (reason > static_cast<uint8_t>(CloseReason::kEvict)) throw fail("window " + std::to_string(i) + ": bad close reason");
    w.info.reason = static_cast<CloseReason>(reason);
    if (w.label < 0 || static_cast<size_t>(w.label) >= ds.classes.size())
      throw fail("window " + std::to_string(i) + ": label " + std::to_string(w.label) + " out of range");
    if (w.source >= ds.sources.size() && !ds.sources.empty())
      throw fail("window " + std::to_string(i) + ": source out of range");
    if (w.info.n_records == 0 || w.info.n_records > n_records - next_record)
      throw fail("window " + std::to_string(i) + ": bad record count");
    w.first_record = next_record;
    next_record += w.info.n_records;
  }
  if (next_record != n_records) throw fail("windows do not cover all records");
  pos += n_windows * kWindowBytes;
  ds.records.resize(n_records);
  for (uint64_t i = 0; i < n_records; ++i) {
    const char* p = bytes.data() + pos + i * kRecordBytes;
    // Version 2: size | reverse << 15. Version 1: a plain size (no direction), clamped.
    const uint16_t word = get<uint16_t>(p + 4);
    ds.records[i] = version >= 2 ? PacketRecord(get<uint32_t>(p), word & PacketRecord::kMaxSize, get<uint16_t>(p + 6), (word >> 15) != 0)
                                 : PacketRecord(get<uint32_t>(p), word, get<uint16_t>(p + 6));
  }
  return ds;
}

WindowDataset load_dataset(const std::string& path) { return dataset_from_bytes(read_file(path), path); }

nlohmann::json read_dataset_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DatasetError(path + ": cannot open: " + std::strerror(errno));
  std::string pre(kPreamble, '\0');
  in.read(pre.data(), kPreamble);
  pre.resize(static_cast<size_t>(in.gcount()));
  if (pre.size() >= sizeof kMagic && std::memcmp(pre.data(), kMagic, sizeof kMagic) == 0 && pre.size() == kPreamble) {
    const auto hlen = get<uint32_t>(pre.data() + 12);
    std::string rest(hlen, '\0');
    in.read(rest.data(), hlen);
    rest.resize(static_cast<size_t>(in.gcount()));
    pre += rest;
  }
  size_t end = 0;
  return parse_header(pre, path, &end);
}

bool looks_like_dataset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char m[sizeof kMagic] = {};
  in.read(m, sizeof m);
  return in.gcount() == sizeof m && std::memcmp(m, kMagic, sizeof m) == 0;
}

}  // namespace flowpic
