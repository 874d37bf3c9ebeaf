#include "tools/corpus.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "tools/labels.hpp"
#include "tools/odeflow.hpp"
#include "tools/pcap_dataset.hpp"
#include "tools/pipeline.hpp"
#include "tools/progress.hpp"

namespace fs = std::filesystem;

namespace flowpic {

namespace {

// Lines of a text file, gzip'd or not (zlib reads both).
class TextLines {
 public:
  explicit TextLines(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (!f_) throw std::runtime_error(path + ": cannot open");
    gzbuffer(f_, 1 << 17);
  }
  ~TextLines() {
    if (f_) gzclose(f_);
  }
  TextLines(const TextLines&) = delete;
  TextLines& operator=(const TextLines&) = delete;
  // Next line without its end of line ("\n" or "\r\n"); false at the end of the file.
  bool next(std::string& line) {
    line.clear();
    char buf[1 << 14];
    while (gzgets(f_, buf, sizeof buf)) {
      line += buf;
      if (!line.empty() && line.back() == '\n') break;
    }
    if (line.empty()) {
      int err = 0;
      const char* msg = gzerror(f_, &err);
      if (err != Z_OK && err != Z_STREAM_END) throw std::runtime_error(path_ + ": " + msg);
      return false;
    }
    ++line_no_;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return true;
  }
  int line_no() const noexcept { return line_no_; }
  std::string where() const { return path_ + ":" + std::to_string(line_no_); }

 private:
  std::string path_;
  gzFile f_;
  int line_no_ = 0;
};

double to_double(const std::string& s, const TextLines& in, const char* what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) throw std::runtime_error(in.where() + ": bad " + what + " '" + s + "'");
  return v;
}

// Collects one capture's packets given as records, then feeds them to the pipeline in time
// order (stable: equal times keep file order), as a capture of those packets would arrive.
struct RecordCapture {
  struct Pkt {
    TimeNs t;
    uint32_t flow;
    uint16_t len;
    uint8_t up;  // 1: client -> server
  };
  std::vector<Pkt> pkts;
  uint8_t proto = 6;

  static FlowKey key(uint32_t flow, bool up, uint8_t proto) {
    FlowKey k{};
    k.family = 4;
    k.proto = proto;
    const uint32_t a = 0x0A000000u | (flow & 0xffffffu);  // 10.x.y.z: the flow's client
    const uint32_t b = 0xC0000201u;                         // 192.0.2.1: its server
    const uint32_t s = up ? a : b, d = up ? b : a;
    for (int i = 0; i < 4; ++i) {
      k.src[i] = static_cast<uint8_t>(s >> (24 - 8 * i));
      k.dst[i] = static_cast<uint8_t>(d >> (24 - 8 * i));
    }
    k.sport = up ? 1 : 2;
    k.dport = up ? 2 : 1;
    return k;
  }
  void add(TimeNs t, uint32_t flow, bool up, uint32_t ip_len) {
    pkts.push_back(Pkt{t, flow, static_cast<uint16_t>(std::min<uint32_t>(ip_len, 65535)), static_cast<uint8_t>(up)});
  }
  void run(OfflinePipeline& pipe) {
    std::stable_sort(pkts.begin(), pkts.end(), [](const Pkt& a, const Pkt& b) { return a.t < b.t; });
    pipe.begin_capture();
    for (const auto& p : pkts) pipe.feed(key(p.flow, p.up, proto), p.t, p.len);
    pipe.end_capture();
    pkts.clear();
  }
};

// Gathers windows of one source into the dataset, mapping raw labels to classes.
class Builder {
 public:
  Builder(WindowDataset& ds, const CorpusOptions& opt, SourceReport& rep, std::vector<std::string>& raw_of_window)
      : ds_(ds), opt_(opt), rep_(rep), raw_(raw_of_window) {}

  void begin(const std::string& source) { source_ = source; }
  uint32_t capture(const std::string& name) {
    ++rep_.captures;
    current_ = static_cast<uint32_t>(ds_.sources.size());
    ds_.sources.push_back(source_ + "/" + name);
    return current_;
  }
  // label == nullptr: the flow has no label in its source.
  void add(const WindowInfo& info, const PacketRecord* recs, uint32_t n, const std::string* label) {
    ++rep_.windows;
    if (!label) {
      ++rep_.unlabelled;
      return;
    }
    int cls = 0;
    if (opt_.map) {
      bool dropped = false;
      cls = opt_.map->map(source_, *label, &dropped);
      if (cls < 0) {
        ++(dropped ? rep_.dropped_by_map : rep_.unmapped);
        if (!dropped && unmapped_seen_.insert({*label, 0}).second)
          rep_.warnings.push_back(source_ + ": raw label '" + *label + "' has no row in " + opt_.map->path());
        return;
      }
    } else {
      raw_.push_back(*label);  // classes assigned at the end (sorted names)
    }
    ++rep_.kept;
    ds_.add(info, recs, n, cls, current_);
  }

 private:
  WindowDataset& ds_;
  const CorpusOptions& opt_;
  SourceReport& rep_;
  std::vector<std::string>& raw_;
  std::string source_;
  uint32_t current_ = 0;
  std::map<std::string, int> unmapped_seen_;
};

std::vector<std::string> files_under(const fs::path& dir, const std::string& suffix) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": no such directory (is the data directory right?)");
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string p = e.path().string();
    if (e.is_regular_file() && p.size() > suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

template <class T>
void limit(std::vector<T>& v, uint32_t max) {
  if (max && v.size() > max) v.resize(max);
}

std::string rel(const std::string& path, const fs::path& base) { return fs::relative(path, base).generic_string(); }

// Columns of a CSV header by name; throws naming the file when one is missing.
std::map<std::string, size_t> header_index(const std::vector<std::string>& cols, const std::string& what,
                                           const std::vector<std::string>& needed) {
  std::map<std::string, size_t> idx;
  for (size_t i = 0; i < cols.size(); ++i) idx[cols[i]] = i;
  for (const auto& n : needed)
    if (!idx.count(n)) throw std::runtime_error(what + ": no column '" + n + "'");
  return idx;
}

// ---- pcap sources: nDPI, Requet, VCA --------------------------------------------------

// Runs captures through the pipeline; captures are named by their path below `base`, and
// `label_of(capture_key, key)` gives a flow's raw label, the capture key being the file name
// (the labels' join key) or, with `key_base`, the path below it (VCA's names repeat across folders).
template <class LabelFn>
void import_pcaps(const std::vector<std::string>& pcaps, const fs::path& base, const CorpusOptions& opt, Builder& b,
                  SourceReport& rep, LabelFn label_of, const fs::path& key_base = {}) {
  std::string capture_key;
  OfflinePipeline pipe(opt.table, [&](const WindowInfo& info, const PacketRecord* recs, uint32_t n, TimeNs) {
    b.add(info, recs, n, label_of(capture_key, info.key));
  });
  Progress bar(rep.name, pcaps.size(), " captures");
  for (const auto& p : pcaps) {
    capture_key = key_base.empty() ? fs::path(p).filename().string() : rel(p, key_base);
    b.capture(rel(p, base));
    const std::string warning = pipe.run_pcap_or_reason(p);
    if (!warning.empty()) rep.warnings.push_back(warning);
    bar.add(1);
  }
  bar.finish();
  rep.packets += pipe.counters().packets;
}

void import_ndpi(const fs::path& dir, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  std::vector<std::string> skipped;
  const auto rows = read_ndpi_labels((dir / "flows_labels.csv").string(), &skipped);
  for (const auto& w : skipped) rep.warnings.push_back(w);
  const LabelIndex index(rows, LabelColumn::kCategoryApp, "DPI");
  auto pcaps = list_captures((dir / "pcap").string());
  limit(pcaps, opt.max_captures);
  import_pcaps(pcaps, dir / "pcap", opt, b, rep,
               [&](const std::string& pcap, const FlowKey& k) { return index.find(pcap, k); });
}

void import_requet(const fs::path& dir, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  const std::string csv = (dir / "flows_labels.csv").string();
  TextLines in(csv);
  std::string line;
  if (!in.next(line)) throw std::runtime_error(csv + ": empty");
  const auto h = header_index(split_csv_line(line), csv, {"pcap", "l4", "client", "server", "label"});
  std::vector<NdpiFlowRow> rows;
  while (in.next(line)) {
    const auto c = split_csv_line(line);
    if (c.size() < h.size()) throw std::runtime_error(in.where() + ": " + std::to_string(c.size()) + " columns");
    NdpiFlowRow r;
    r.pcap = c[h.at("pcap")];
    uint8_t fa = 0, fb = 0;
    if (!l4_from_name(c[h.at("l4")], r.proto) || !parse_endpoint(c[h.at("client")], r.a_addr, fa, r.a_port) ||
        !parse_endpoint(c[h.at("server")], r.b_addr, fb, r.b_port) || fa != fb)
      throw std::runtime_error(in.where() + ": bad protocol or endpoint");
    r.family = fa;
    r.category = c[h.at("label")];
    r.confidence = "given";
    r.line = in.line_no();
    rows.push_back(std::move(r));
  }
  const LabelIndex index(rows, LabelColumn::kCategory, "");
  auto pcaps = files_under(dir, ".pcap");  // C/PCAP_FILES/*.pcap (group C of the dataset)
  limit(pcaps, opt.max_captures);
  import_pcaps(pcaps, dir, opt, b, rep, [&](const std::string& pcap, const FlowKey& k) { return index.find(pcap, k); });
}

void import_vca(const fs::path& data, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  // labels.csv: one row per capture; its main flow ("udp:A:pa-B:pb") carries the activity.
  const std::string csv = (data / "vca" / "labels.csv").string();
  TextLines in(csv);
  std::string line;
  if (!in.next(line)) throw std::runtime_error(csv + ": empty");
  const auto h = header_index(split_csv_line(line), csv, {"file", "activity", "main_flow"});
  std::vector<NdpiFlowRow> rows;
  std::vector<std::string> pcaps;
  while (in.next(line)) {
    const auto c = split_csv_line(line);
    if (c.size() < h.size()) throw std::runtime_error(in.where() + ": " + std::to_string(c.size()) + " columns");
    const std::string file = c[h.at("file")], flow = c[h.at("main_flow")];
    const size_t colon = flow.find(':'), dash = flow.find('-', colon == std::string::npos ? 0 : colon);
    NdpiFlowRow r;
    uint8_t fa = 0, fb = 0;
    std::string l4 = colon == std::string::npos ? std::string() : flow.substr(0, colon);
    for (auto& ch : l4) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (colon == std::string::npos || dash == std::string::npos || !l4_from_name(l4, r.proto) ||
        !parse_endpoint(flow.substr(colon + 1, dash - colon - 1), r.a_addr, fa, r.a_port) ||
        !parse_endpoint(flow.substr(dash + 1), r.b_addr, fb, r.b_port) || fa != fb)
      throw std::runtime_error(in.where() + ": bad main_flow '" + flow + "'");
    r.family = fa;
    r.pcap = file;  // the path is the join key: capture names repeat across folders
    r.category = c[h.at("activity")];
    r.confidence = "given";
    rows.push_back(std::move(r));
    pcaps.push_back((data / file).string());
  }
  std::sort(pcaps.begin(), pcaps.end());
  limit(pcaps, opt.max_captures);
  const LabelIndex index(rows, LabelColumn::kCategory, "");
  import_pcaps(pcaps, data / "vca", opt, b, rep, [&](const std::string& key, const FlowKey& k) { return index.find(key, k); },
               data);
}

// ---- record sources ---------------------------------------------------------------------

// One window callback for record sources: every flow of the current capture has its label.
struct RecordImport {
  Builder& b;
  const std::string* label = nullptr;
  OfflinePipeline pipe;
  RecordImport(Builder& builder, const CorpusOptions& opt)
      : b(builder), pipe(opt.table, [this](const WindowInfo& info, const PacketRecord* recs, uint32_t n, TimeNs) {
          b.add(info, recs, n, label);
        }) {}
};

void import_video_traffic(const fs::path& dir, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  RecordImport imp(b, opt);
  std::vector<std::string> files;
  for (const char* platform : {"Youtube", "Bilibili"}) {
    auto f = files_under(dir / platform, ".csv.gz");
    files.insert(files.end(), f.begin(), f.end());
  }
  Progress bar(rep.name, files.size(), " files");
  uint32_t sessions = 0;
  for (const auto& path : files) {
    const std::string r = rel(path, dir);
    const std::string platform = r.substr(0, r.find('/'));
    imp.label = &platform;
    RecordCapture cap;
    cap.proto = platform == "Youtube" ? 17 : 6;
    TextLines in(path);
    std::string line, session;
    auto flush = [&] {
      if (!session.empty()) cap.run(imp.pipe);
      session.clear();
    };
    while (in.next(line)) {
      if (line.rfind("session,", 0) == 0) {
        flush();
        if (opt.max_captures && sessions >= opt.max_captures) break;
        ++sessions;
        session = line.substr(8);
        b.capture(r + "#" + session);
        continue;
      }
      if (line.rfind("rel_ts_us", 0) == 0 || line.empty()) continue;
      if (session.empty()) throw std::runtime_error(in.where() + ": packet line before the first 'session,' line");
      const size_t comma = line.find(',');
      if (comma == std::string::npos) throw std::runtime_error(in.where() + ": expected 'rel_ts_us,len'");
      const double ts_us = to_double(line.substr(0, comma), in, "timestamp");
      const double len = to_double(line.substr(comma + 1), in, "length");
      const double frame = std::fabs(len);
      if (ts_us < 0 || frame < 14 + 20 || frame > 65535) throw std::runtime_error(in.where() + ": timestamp or length out of range");
      cap.add(static_cast<TimeNs>(std::llround(ts_us)) * kNsPerUs, 0, len > 0, static_cast<uint32_t>(frame) - 14);
    }
    flush();
    bar.add(1);
    if (opt.max_captures && sessions >= opt.max_captures) break;
  }
  bar.finish();
  rep.packets += imp.pipe.counters().packets;
}

void import_trafficleak(const fs::path& dir, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  RecordImport imp(b, opt);
  auto files = files_under(dir, ".csv.gz");
  Progress bar(rep.name, files.size(), " sites");
  uint32_t traces = 0;
  for (const auto& path : files) {
    std::string site = fs::path(path).filename().string();
    site = site.substr(0, site.size() - std::string(".csv.gz").size());
    imp.label = &site;
    TextLines in(path);
    std::string line;
    if (!in.next(line)) throw std::runtime_error(path + ": empty");
    const auto h = header_index(split_csv_line(line), path, {"trace", "t", "ip_len", "dir"});
    const size_t ct = h.at("trace"), ctime = h.at("t"), clen = h.at("ip_len"), cdir = h.at("dir");
    RecordCapture cap;
    std::string trace;
    bool stop = false;
    while (in.next(line)) {
      const auto c = split_csv_line(line);
      if (c.size() < h.size()) throw std::runtime_error(in.where() + ": " + std::to_string(c.size()) + " columns");
      if (c[ct] != trace) {
        if (!trace.empty()) cap.run(imp.pipe);
        if (opt.max_captures && traces >= opt.max_captures) {
          stop = true;
          trace.clear();
          break;
        }
        ++traces;
        trace = c[ct];
        b.capture(site + "#" + trace);
      }
      if (c[cdir] != "1" && c[cdir] != "-1") continue;  // not in the SSH tunnel (LLMNR, DNS, loopback copies)
      const double t = to_double(c[ctime], in, "time"), len = to_double(c[clen], in, "ip_len");
      if (t < 0 || len < 20 || len > 65535) throw std::runtime_error(in.where() + ": time or ip_len out of range");
      cap.add(seconds_to_ns(t), 0, c[cdir] == "1", static_cast<uint32_t>(len));
    }
    if (!trace.empty()) cap.run(imp.pipe);
    bar.add(1);
    if (stop) break;
  }
  bar.finish();
  rep.packets += imp.pipe.counters().packets;
}

void import_fgnet(const fs::path& dir, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  RecordImport imp(b, opt);
  auto files = files_under(dir / "D1", ".jsonl.gz");
  Progress bar(rep.name, files.size(), " apps");
  for (const auto& path : files) {
    std::string app = fs::path(path).filename().string();
    app = app.substr(0, app.size() - std::string(".jsonl.gz").size());
    imp.label = &app;
    TextLines in(path);
    std::string line, file;
    RecordCapture cap;
    uint32_t flow = 0, captures = 0;  // max_captures counts runs per app here
    while (in.next(line)) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const std::exception& e) {
        throw std::runtime_error(in.where() + ": not JSON: " + e.what());
      }
      if (!j.is_object() || !j.contains("packet_length") || !j.contains("arrive_time_delta") ||
          !j.contains("start_timestamp") || !j.contains("file"))
        throw std::runtime_error(in.where() + ": needs packet_length, arrive_time_delta, start_timestamp, file");
      const auto& lens = j["packet_length"];
      const auto& gaps = j["arrive_time_delta"];
      if (!lens.is_array() || !gaps.is_array() || lens.size() != gaps.size() || !j["start_timestamp"].is_number() ||
          !j["file"].is_string())
        throw std::runtime_error(in.where() + ": packet_length and arrive_time_delta must be arrays of one length");
      const std::string f = j["file"].get<std::string>();
      if (f != file) {  // a new capture run (one JSON file of the origin = one 30-s run)
        if (!file.empty()) cap.run(imp.pipe);
        if (opt.max_captures && captures >= opt.max_captures) {
          file.clear();
          break;
        }
        ++captures;
        file = f;
        flow = 0;
        b.capture(app + "/" + fs::path(f).filename().string());
      }
      double t = j["start_timestamp"].get<double>();
      for (size_t i = 0; i < lens.size(); ++i) {
        if (!lens[i].is_number_integer() || !gaps[i].is_number()) throw std::runtime_error(in.where() + ": non-numeric entry");
        const int64_t x = lens[i].get<int64_t>();
        const double g = gaps[i].get<double>();
        if (x == 0 || x < -65535 || x > 65535 || !std::isfinite(g)) throw std::runtime_error(in.where() + ": entry out of range");
        // A few gaps are negative (out-of-order arrivals in the origin): the capture is sorted by time before it is fed.
        if (i) t += g;
        const TimeNs ts = seconds_to_ns(t);
        // Coalesced segments (GRO/TSO on the phone) become MSS-sized packets at the same time.
        uint32_t payload = static_cast<uint32_t>(std::llabs(x));
        while (payload > 1448) {
          cap.add(ts, flow, x > 0, 1500);
          payload -= 1448;
        }
        cap.add(ts, flow, x > 0, payload + 52);
      }
      ++flow;
    }
    if (!file.empty()) cap.run(imp.pipe);
    bar.add(1);
  }
  bar.finish();
  rep.packets += imp.pipe.counters().packets;
}

// "[1, 2, 3]" -> numbers.
std::vector<double> number_list(const std::string& s, const TextLines& in) {
  std::vector<double> out;
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') throw std::runtime_error(in.where() + ": expected a [list]");
  size_t p = 1;
  while (p < s.size() - 1) {
    size_t e = s.find(',', p);
    if (e == std::string::npos) e = s.size() - 1;
    std::string item = s.substr(p, e - p);
    item.erase(0, item.find_first_not_of(' '));
    out.push_back(to_double(item, in, "list entry"));
    p = e + 1;
  }
  return out;
}

void import_learnlive(const fs::path& dir, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  RecordImport imp(b, opt);
  auto files = files_under(dir / "first_40_pkts", ".txt");
  limit(files, opt.max_captures);
  for (const auto& path : files) {
    const std::string name = fs::path(path).filename().string();
    const std::string category = name.substr(0, name.find('_'));
    imp.label = &category;
    b.capture(name);
    RecordCapture cap;
    TextLines in(path);
    std::string line;
    uint32_t flow = 0;
    while (in.next(line)) {
      if (line.empty()) continue;
      std::vector<std::string> f;
      size_t p = 0;
      while (true) {
        const size_t e = line.find('|', p);
        f.push_back(line.substr(p, e == std::string::npos ? std::string::npos : e - p));
        if (e == std::string::npos) break;
        p = e + 1;
      }
      if (f.size() != 11) throw std::runtime_error(in.where() + ": expected 11 '|'-separated fields, got " + std::to_string(f.size()));
      const double start = to_double(f[0], in, "start");
      const auto sizes = number_list(f[7], in), gaps = number_list(f[9], in);
      if (sizes.size() != gaps.size() || sizes.empty()) throw std::runtime_error(in.where() + ": sizes and gaps differ in length");
      double t = start;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (i) t += gaps[i];  // gaps[0] is a placeholder (1e-05)
        if (sizes[i] < 54 || sizes[i] > 65535 || gaps[i] < 0) throw std::runtime_error(in.where() + ": size or gap out of range");
        const uint32_t ip = sizes[i] == 60 ? 40 : static_cast<uint32_t>(sizes[i]) - 14;
        cap.add(seconds_to_ns(t), flow, true, ip);  // unidirectional subflows: each its own flow
      }
      ++flow;
    }
    cap.run(imp.pipe);
  }
  rep.packets += imp.pipe.counters().packets;
}

void import_odeflow(const fs::path& dir, const CorpusOptions& opt, Builder& b, SourceReport& rep) {
  // ODE-Flow's windows are cut already: with a window min_ip_len their shorter packets are taken
  // out of each window, and a window left with fewer than min(min_packets, 10) packets is not kept.
  const uint32_t min_len = opt.table.window.min_ip_len;
  const uint32_t keep_at = std::min<uint32_t>(opt.table.window.min_packets, 10);
  std::vector<PacketRecord> kept;
  for (const char* split : {"train", "val"}) {
    const WindowDataset d = load_odeflow(dir.string(), split);
    b.capture(split);
    uint32_t n = 0;
    for (const auto& w : d.windows) {
      rep.packets += w.info.packets;
      WindowInfo info = w.info;  // ODE-Flow keeps no addresses: each window its own synthetic flow
      info.key = RecordCapture::key(n++, true, 0);
      const PacketRecord* recs = d.records_of(w);
      if (min_len == 0) {
        b.add(info, recs, w.info.n_records, &d.classes[static_cast<size_t>(w.label)]);
        continue;
      }
      kept.clear();
      uint64_t bytes = 0;
      for (uint32_t i = 0; i < w.info.n_records; ++i)
        if (recs[i].size >= min_len) {
          kept.push_back(recs[i]);
          bytes += recs[i].size;
        }
      if (kept.size() < keep_at) continue;  // too small: like a window under min_packets, not counted
      const uint32_t t0 = kept.front().t_us;
      for (auto& r : kept) r.t_us -= t0;
      info.packets = info.n_records = static_cast<uint32_t>(kept.size());
      info.bytes = bytes;
      b.add(info, kept.data(), info.n_records, &d.classes[static_cast<size_t>(w.label)]);
    }
  }
}

}  // namespace

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

const std::vector<std::string>& corpus_source_names() {
  static const std::vector<std::string> kNames = {"ode-flow",      "ndpi",        "requet", "vca",
                                                  "video-traffic", "trafficleak", "fgnet",  "learnlive"};
  return kNames;
}

std::string source_of_capture(const std::string& capture) { return capture.substr(0, capture.find('/')); }

WindowDataset build_corpus(const std::vector<std::string>& sources, const CorpusOptions& opt,
                           std::vector<SourceReport>* reports) {
  const std::string err = opt.table.validate();
  if (!err.empty()) throw std::invalid_argument("flow table: " + err);
  for (const auto& s : sources)
    if (std::find(corpus_source_names().begin(), corpus_source_names().end(), s) == corpus_source_names().end())
      throw std::invalid_argument("unknown source '" + s + "' (known: ode-flow, ndpi, requet, vca, video-traffic, "
                                  "trafficleak, fgnet, learnlive)");
  const bool count20 = opt.table.window.kind == WindowPolicy::Kind::kCount;
  WindowDataset ds;
  ds.window = opt.table.window;
  if (opt.map) ds.classes = opt.map->classes();
  std::vector<std::string> raw;  // raw label per window when there is no map
  std::vector<SourceReport> local;
  std::vector<SourceReport>& reps = reports ? *reports : local;
  Progress::set_enabled(opt.progress);
  const fs::path data(opt.data_dir);
  for (const auto& s : sources) {
    reps.emplace_back();
    SourceReport& rep = reps.back();
    rep.name = s;
    rep.flow_identity = s != "ode-flow" && s != "learnlive";
    Builder b(ds, opt, rep, raw);
    b.begin(s);
    const auto t0 = std::chrono::steady_clock::now();
    if ((s == "ode-flow" || s == "learnlive") &&
        (!count20 || opt.table.window.packets != 20 || (opt.table.window.bidirectional && !opt.keep_one_way))) {
      rep.warnings.push_back(s + ": holds 20-packet (ode-flow) or 40-packet (learnlive) unidirectional windows only; "
                             "skipped for window policy " + window_spec_string(opt.table.window) +
                             (opt.table.window.bidirectional ? " (bidirectional flows)" : ""));
      continue;
    }
    if (s == "ode-flow") import_odeflow(data / "ode-flow", opt, b, rep);
    else if (s == "ndpi") import_ndpi(data / "ndpi", opt, b, rep);
    else if (s == "requet") import_requet(data / "requet", opt, b, rep);
    else if (s == "vca") import_vca(data, opt, b, rep);
    else if (s == "video-traffic") import_video_traffic(data / "video-traffic", opt, b, rep);
    else if (s == "trafficleak") import_trafficleak(data / "trafficleak", opt, b, rep);
    else if (s == "fgnet") import_fgnet(data / "fgnet", opt, b, rep);
    else if (s == "learnlive") import_learnlive(data / "learnlive", opt, b, rep);
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  Progress::set_enabled(true);  // the process default (the CLI decides per call)
  if (!opt.map) assign_classes_by_name(ds, raw);
  return ds;
}

}  // namespace flowpic
