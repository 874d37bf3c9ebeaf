#include "dataplane/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/run_dir.hpp"
#include "embedded_config.hpp"  // generated from configs/replay.yaml

namespace flowpic {

const char* clock_mode_name(ClockMode m) noexcept {
  switch (m) {
    case ClockMode::kAuto: return "auto";
    case ClockMode::kTrace: return "trace";
    case ClockMode::kTsc: return "tsc";
  }
  return "?";
}

std::string Action::to_string() const {
  switch (kind) {
    case Kind::kForward: return "forward";
    case Kind::kDrop: return "drop";
    case Kind::kDscp: return "dscp " + std::to_string(dscp);
  }
  return "?";
}

bool PortConfig::is_pci() const {
  static const std::regex pci(R"(^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$)");
  return std::regex_match(device, pci);
}

std::string PortConfig::dpdk_name() const {
  if (is_pci()) {
    std::string d = device;
    std::transform(d.begin(), d.end(), d.begin(), ::tolower);
    return d.size() == 7 ? "0000:" + d : d;
  }
  return device.substr(0, device.find(','));
}

const PortConfig* Config::port(const std::string& name) const {
  for (const auto& p : ports)
    if (p.name == name) return &p;
  return nullptr;
}

const char* embedded_replay_config() noexcept { return kEmbeddedReplayYaml; }

namespace {

// Reads typed values out of YAML, naming the exact path of anything wrong.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw ConfigError("config " + source_ + ": " + (path.empty() ? "" : path + ": ") + what);
  }

  void require_map(const YAML::Node& n, const std::string& path) const {
    if (!n.IsMap()) fail(path, "expected a mapping (key: value lines)");
  }

  // A mapping's key as text; a key that is itself a list or a mapping (YAML's "? " complex
  // keys) is refused here rather than thrown from yaml-cpp as a bad conversion.
  std::string key_of(const YAML::Node& key, const std::string& path) const {
    if (!key.IsScalar())
      fail(path, "a key must be a plain name, not a list or a mapping (line " + std::to_string(key.Mark().line + 1) +
                     "; a line starting with '?' makes one)");
    return key.Scalar();
  }

  void check_keys(const YAML::Node& n, const std::string& path, std::initializer_list<const char*> allowed) const {
    require_map(n, path);
    for (const auto& kv : n) {
      const std::string key = key_of(kv.first, path);
      bool ok = false;
      for (const char* a : allowed) ok |= key == a;
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(path, "unknown key '" + key + "' (expected one of: " + list + ")");
      }
    }
  }

  std::string str(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) fail(path, "expected a text value");
    return n.Scalar();
  }

  uint64_t uint(const YAML::Node& n, const std::string& path, uint64_t lo, uint64_t hi) const {
    const std::string s = str(n, path);
    uint64_t v = 0;
    std::size_t used = 0;
    try {
      if (s.empty() || s[0] == '-') throw std::invalid_argument(s);
      if (s[0] == '+') throw std::invalid_argument(s);
      v = std::stoull(s, &used, 10);  // decimal only: "010" is ten, not octal eight; "0x10" is refused
    } catch (const std::exception&) {
      fail(path, "expected a whole number, got '" + s + "'");
    }
    if (used != s.size()) fail(path, "expected a whole number, got '" + s + "'");
    if (v < lo || v > hi)
      fail(path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + s);
    return v;
  }

  double real(const YAML::Node& n, const std::string& path, double lo, double hi) const {
    const std::string s = str(n, path);
    double v = 0;
    std::size_t used = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      fail(path, "expected a number, got '" + s + "'");
    }
    if (used != s.size() || !std::isfinite(v)) fail(path, "expected a number, got '" + s + "'");
    if (v < lo || v > hi) {
      std::ostringstream o;
      o << "must be between " << lo << " and " << hi << ", got " << s;
      fail(path, o.str());
    }
    return v;
  }

  bool boolean(const YAML::Node& n, const std::string& path) const {
    const std::string s = str(n, path);
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(path, "expected true or false, got '" + s + "'");
  }

  std::vector<unsigned> cores(const YAML::Node& n, const std::string& path) const {
    std::vector<unsigned> out;
    if (!n || n.IsNull()) return out;
    if (!n.IsSequence()) fail(path, "expected a list of CPU numbers, e.g. [2, 3]");
    for (std::size_t i = 0; i < n.size(); ++i)
      out.push_back(static_cast<unsigned>(uint(n[i], path + "[" + std::to_string(i) + "]", 0, 4095)));
    std::set<unsigned> uniq(out.begin(), out.end());
    if (uniq.size() != out.size()) fail(path, "lists a CPU twice");
    return out;
  }

 private:
  std::string source_;
};

// "a.b.0.c=value": walks/creates the YAML path and sets the value (parsed as YAML).
void apply_override(YAML::Node root, const std::string& expr, const Reader& rd) {
  const auto eq = expr.find('=');
  if (eq == std::string::npos || eq == 0)
    rd.fail("--set " + expr, "expected key=value (e.g. inference.batch=32)");
  const std::string key = expr.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(expr.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    rd.fail("--set " + expr, std::string("bad value: ") + e.what());
  }
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  // yaml-cpp nodes are handles: descend by reassigning handles with reset().
  YAML::Node cur;
  cur.reset(root);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const std::string& p = parts[i];
    const bool index = !p.empty() && std::all_of(p.begin(), p.end(), ::isdigit);
    if (index && cur.IsSequence()) {
      const std::size_t k = std::stoul(p);
      if (k > cur.size()) rd.fail("--set " + expr, "index " + p + " is past the end of the list");
      if (k == cur.size()) cur.push_back(YAML::Node(YAML::NodeType::Map));
      if (last) {
        cur[k] = value;
      } else {
        YAML::Node next = cur[k];
        cur.reset(next);
      }
    } else {
      if (!cur.IsMap() && !cur.IsNull()) rd.fail("--set " + expr, "'" + p + "' is not inside a mapping");
      if (last) {
        cur[p] = value;
      } else {
        if (!cur[p]) cur[p] = YAML::Node(YAML::NodeType::Map);
        YAML::Node next = cur[p];
        cur.reset(next);
      }
    }
  }
}

WindowPolicy parse_window(const YAML::Node& n, const Reader& rd) {
  rd.check_keys(n, "window", {"kind", "length_s", "packets", "min_packets", "max_windows", "flows", "min_ip_len"});
  WindowPolicy w;
  const std::string kind = n["kind"] ? rd.str(n["kind"], "window.kind") : "count";
  if (kind == "time") {
    w.kind = WindowPolicy::Kind::kTime;
  } else if (kind == "count") {
    w.kind = WindowPolicy::Kind::kCount;
  } else {
    rd.fail("window.kind", "expected time or count, got '" + kind + "'");
  }
  if (n["length_s"]) w.length_ns = seconds_to_ns(rd.real(n["length_s"], "window.length_s", 0.001, 86400));
  if (n["packets"]) w.packets = static_cast<uint32_t>(rd.uint(n["packets"], "window.packets", 1, 1u << 20));
  if (n["min_packets"])
    w.min_packets = static_cast<uint32_t>(rd.uint(n["min_packets"], "window.min_packets", 1, 1u << 20));
  if (n["max_windows"])
    w.max_windows = static_cast<uint32_t>(rd.uint(n["max_windows"], "window.max_windows", 0, 1u << 30));
  if (n["flows"]) {
    const std::string flows = rd.str(n["flows"], "window.flows");
    if (flows != "uni" && flows != "bi") rd.fail("window.flows", "expected uni or bi, got '" + flows + "'");
    w.bidirectional = flows == "bi";
  }
  if (n["min_ip_len"])
    w.min_ip_len = static_cast<uint32_t>(rd.uint(n["min_ip_len"], "window.min_ip_len", 0, 65535));
  return w;
}

Action parse_action(const YAML::Node& n, const std::string& path, const Reader& rd) {
  Action a;
  std::string s;
  if (n.IsMap()) {  // {dscp: 46}
    rd.check_keys(n, path, {"dscp"});
    a.kind = Action::Kind::kDscp;
    a.dscp = static_cast<uint8_t>(rd.uint(n["dscp"], path + ".dscp", 0, 63));
    return a;
  }
  s = rd.str(n, path);
  if (s == "forward") return a;
  if (s == "drop") {
    a.kind = Action::Kind::kDrop;
    return a;
  }
  if (s.rfind("dscp", 0) == 0) {
    std::string num = s.substr(4);
    num.erase(0, num.find_first_not_of(" \t"));
    a.kind = Action::Kind::kDscp;
    a.dscp = static_cast<uint8_t>(rd.uint(YAML::Node(num), path, 0, 63));
    return a;
  }
  rd.fail(path, "expected forward, drop or 'dscp N' (N = 0..63), got '" + s + "'");
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  Reader rd(source);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    rd.fail("", std::string("not valid YAML: ") + e.what());
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  for (const auto& o : overrides) apply_override(root, o, rd);

  rd.check_keys(root, "", {"instance", "run_dir", "user", "group", "eal", "ports", "mempool", "cores", "flow_table", "window", "clock", "model",
                           "inference", "outputs", "actions", "control", "replay", "window_ring", "exporters"});
  Config c;
  c.source = source;

  // instance: names the run directory and the lock; default the config file's stem.
  if (const auto in = root["instance"]; in && !in.IsNull()) {
    c.instance = rd.str(in, "instance");
  } else {
    c.instance = source.rfind("<embedded", 0) == 0 ? "replay" : std::filesystem::path(source).stem().string();
    if (!valid_instance_name(c.instance))
      rd.fail("instance", "the config file's name '" + c.instance +
                              "' is no instance name: set instance: (letters, digits, _ - . @, at most 64)");
  }
  if (!valid_instance_name(c.instance))
    rd.fail("instance", "'" + c.instance + "' is no instance name: use letters, digits, _ - . @ (at most 64, "
                        "not starting with . or -)");
  std::string run_dir_yaml;
  if (const auto rdn = root["run_dir"]; rdn && !rdn.IsNull()) {
    run_dir_yaml = rd.str(rdn, "run_dir");
    if (run_dir_yaml.empty() || run_dir_yaml[0] != '/')
      rd.fail("run_dir", "must be an absolute path, e.g. /run/flowpicd/" + c.instance + ", got '" + run_dir_yaml + "'");
  }
  if (const auto u = root["user"]; u && !u.IsNull()) {
    c.user = rd.str(u, "user");
    if (c.user.empty()) rd.fail("user", "must not be empty (remove user: to keep the starting user)");
  }
  if (const auto g = root["group"]; g && !g.IsNull()) {
    c.group = rd.str(g, "group");
    if (c.group.empty()) rd.fail("group", "must not be empty (remove group: for the user's primary group)");
  }

  if (const auto eal = root["eal"]; eal && !eal.IsNull()) {
    if (!eal.IsSequence()) rd.fail("eal", "expected a list of EAL arguments, e.g. [--no-huge, -m, 512]");
    for (std::size_t i = 0; i < eal.size(); ++i) {
      const std::string path = "eal[" + std::to_string(i) + "]";
      std::string a = rd.str(eal[i], path);
      // Core placement has one source of truth: cores.poll (flowpicd builds --lcores itself).
      for (const char* banned : {"-l", "-c", "--lcores", "--main-lcore", "--master-lcore"}) {
        const std::string b = banned;
        if (a == b || a.rfind(b + "=", 0) == 0 || (b == "-l" && a.rfind("-l", 0) == 0 && a.size() > 2 &&
                                                   std::isdigit(static_cast<unsigned char>(a[2]))))
          rd.fail(path, "remove '" + a + "': polling cores come from cores.poll, flowpicd sets the EAL core list itself");
      }
      c.eal.push_back(std::move(a));
    }
  }

  const auto ports = root["ports"];
  if (!ports || !ports.IsSequence() || ports.size() == 0)
    rd.fail("ports", "at least one port is needed, e.g. - {name: p0, device: \"net_pcap0,rx_pcap=in.pcap,tx_iface=lo\", peer: p0}");
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const std::string path = "ports[" + std::to_string(i) + "]";
    const auto p = ports[i];
    rd.check_keys(p, path, {"name", "device", "peer", "rx_queues", "rx_desc", "tx_desc"});
    PortConfig pc;
    if (!p["name"]) rd.fail(path, "missing 'name'");
    if (!p["device"]) rd.fail(path, "missing 'device' (PCI address or vdev spec)");
    pc.name = rd.str(p["name"], path + ".name");
    pc.device = rd.str(p["device"], path + ".device");
    if (pc.name.empty()) rd.fail(path + ".name", "must not be empty");
    if (pc.device.empty()) rd.fail(path + ".device", "must not be empty");
    pc.peer = p["peer"] ? rd.str(p["peer"], path + ".peer") : pc.name;
    if (p["rx_queues"]) pc.rx_queues = static_cast<uint32_t>(rd.uint(p["rx_queues"], path + ".rx_queues", 0, 128));
    if (p["rx_desc"]) pc.rx_desc = static_cast<uint32_t>(rd.uint(p["rx_desc"], path + ".rx_desc", 16, 65536));
    if (p["tx_desc"]) pc.tx_desc = static_cast<uint32_t>(rd.uint(p["tx_desc"], path + ".tx_desc", 16, 65536));
    if (c.port(pc.name)) rd.fail(path + ".name", "port name '" + pc.name + "' is used twice");
    for (const auto& o : c.ports)
      if (o.dpdk_name() == pc.dpdk_name())
        rd.fail(path + ".device", "device '" + pc.dpdk_name() + "' is already port '" + o.name + "'");
    c.ports.push_back(std::move(pc));
  }
  uint32_t total_queues = 0;
  for (std::size_t i = 0; i < c.ports.size(); ++i) {
    if (!c.port(c.ports[i].peer))
      rd.fail("ports[" + std::to_string(i) + "].peer", "no port named '" + c.ports[i].peer + "'");
    total_queues += c.ports[i].rx_queues;
  }
  if (total_queues == 0) rd.fail("ports", "no port has rx_queues > 0: nothing to poll");

  if (const auto m = root["mempool"]; m && !m.IsNull()) {
    rd.check_keys(m, "mempool", {"size", "cache"});
    if (m["size"] && rd.str(m["size"], "mempool.size") != "auto")
      c.mempool_size = static_cast<uint32_t>(rd.uint(m["size"], "mempool.size", 64, 1u << 30));
    if (m["cache"]) c.mempool_cache = static_cast<uint32_t>(rd.uint(m["cache"], "mempool.cache", 0, 512));
  }

  const auto cores = root["cores"];
  if (!cores) rd.fail("cores", "missing: say which CPUs poll, e.g. cores: {poll: [1], build: [0], infer: []}");
  rd.check_keys(cores, "cores", {"poll", "build", "infer"});
  c.poll_cores = rd.cores(cores["poll"], "cores.poll");
  c.build_cores = rd.cores(cores["build"], "cores.build");
  c.infer_cores = rd.cores(cores["infer"], "cores.infer");
  if (c.poll_cores.size() != total_queues)
    rd.fail("cores.poll", "lists " + std::to_string(c.poll_cores.size()) + " CPUs but the ports have " +
                              std::to_string(total_queues) + " rx_queues in all: one polling CPU per queue");
  auto overlap = [&](const std::vector<unsigned>& a, const char* an, const std::vector<unsigned>& b, const char* bn) {
    for (unsigned x : a)
      if (std::find(b.begin(), b.end(), x) != b.end())
        rd.fail("cores", "CPU " + std::to_string(x) + " is in both " + an + " and " + bn +
                             ": give each role its own CPUs (an empty build/infer list floats on the non-polling CPUs)");
  };
  overlap(c.poll_cores, "poll", c.build_cores, "build");
  overlap(c.poll_cores, "poll", c.infer_cores, "infer");
  overlap(c.build_cores, "build", c.infer_cores, "infer");

  if (const auto f = root["flow_table"]; f && !f.IsNull()) {
    rd.check_keys(f, "flow_table", {"capacity", "idle_timeout_s", "max_records"});
    if (f["capacity"]) c.table_capacity = static_cast<uint32_t>(rd.uint(f["capacity"], "flow_table.capacity", 16, 1u << 28));
    if (f["idle_timeout_s"]) c.idle_timeout_s = rd.real(f["idle_timeout_s"], "flow_table.idle_timeout_s", 0.001, 86400);
    if (f["max_records"]) c.max_records = static_cast<uint32_t>(rd.uint(f["max_records"], "flow_table.max_records", 1, 1u << 20));
  }
  if (const auto w = root["window"]; w && !w.IsNull()) {
    c.window = parse_window(w, rd);
    for (const auto& kv : w) c.window_keys.push_back(kv.first.as<std::string>());
  }

  if (const auto ck = root["clock"]) {
    const std::string s = rd.str(ck, "clock");
    if (s == "auto") c.clock = ClockMode::kAuto;
    else if (s == "trace") c.clock = ClockMode::kTrace;
    else if (s == "tsc") c.clock = ClockMode::kTsc;
    else rd.fail("clock", "expected auto, trace or tsc, got '" + s + "'");
  }

  if (!root["model"]) rd.fail("model", "missing: path of the model file, e.g. model: models/default.fpm");
  c.model_path = rd.str(root["model"], "model");

  if (const auto inf = root["inference"]; inf && !inf.IsNull()) {
    rd.check_keys(inf, "inference", {"batch", "max_wait_ms", "threads", "unknown_below"});
    if (inf["batch"]) c.batch = static_cast<uint32_t>(rd.uint(inf["batch"], "inference.batch", 1, 4096));
    if (inf["max_wait_ms"]) c.max_wait_ms = static_cast<uint32_t>(rd.uint(inf["max_wait_ms"], "inference.max_wait_ms", 0, 60000));
    if (inf["threads"]) c.infer_threads = static_cast<uint32_t>(rd.uint(inf["threads"], "inference.threads", 1, 256));
    if (inf["unknown_below"]) c.unknown_below = static_cast<float>(rd.real(inf["unknown_below"], "inference.unknown_below", 0, 1));
  }

  if (const auto o = root["outputs"]; o && !o.IsNull()) {
    rd.check_keys(o, "outputs", {"verdicts", "stats_interval_s"});
    if (o["verdicts"]) c.verdicts = rd.str(o["verdicts"], "outputs.verdicts");
    if (c.verdicts.empty()) rd.fail("outputs.verdicts", "expected stdout, none or a file path");
    if (o["stats_interval_s"]) c.stats_interval_s = rd.real(o["stats_interval_s"], "outputs.stats_interval_s", 0, 86400);
  }

  if (const auto a = root["actions"]; a && !a.IsNull()) {
    rd.require_map(a, "actions");
    for (const auto& kv : a) {
      const std::string cls = rd.key_of(kv.first, "actions");
      c.actions[cls] = parse_action(kv.second, "actions." + cls, rd);
    }
  }

  if (const auto ctl = root["control"]; ctl && !ctl.IsNull()) {
    rd.check_keys(ctl, "control", {"socket", "model_max_mb", "allowed_uids", "allowed_gids", "prometheus"});
    for (const char* key : {"allowed_uids", "allowed_gids"}) {
      const auto list = ctl[key];
      if (!list || list.IsNull()) continue;
      const std::string where = std::string("control.") + key;
      if (!list.IsSequence()) rd.fail(where, "must be a list of numeric ids, e.g. [998]");
      auto& out = std::string(key) == "allowed_uids" ? c.control_allowed_uids : c.control_allowed_gids;
      for (std::size_t i = 0; i < list.size(); ++i)
        out.push_back(static_cast<uint32_t>(rd.uint(list[i], where + "." + std::to_string(i), 0, 4294967294ull)));
    }
    if (ctl["socket"]) c.control_socket = rd.str(ctl["socket"], "control.socket");
    if (ctl["model_max_mb"])
      c.model_max_mb = static_cast<uint32_t>(rd.uint(ctl["model_max_mb"], "control.model_max_mb", 1, 4096));
    if (const auto pr = ctl["prometheus"]; pr && !pr.IsNull()) {
      rd.check_keys(pr, "control.prometheus", {"enabled", "address", "port"});
      if (pr["enabled"]) c.prometheus_enabled = rd.boolean(pr["enabled"], "control.prometheus.enabled");
      if (pr["address"]) c.prometheus_address = rd.str(pr["address"], "control.prometheus.address");
      if (pr["port"]) c.prometheus_port = static_cast<uint16_t>(rd.uint(pr["port"], "control.prometheus.port", 0, 65535));
    }
  }

  if (const auto r = root["replay"]; r && !r.IsNull()) {
    rd.check_keys(r, "replay", {"exit_at_end", "idle_ms"});
    if (r["exit_at_end"]) c.exit_at_end = rd.boolean(r["exit_at_end"], "replay.exit_at_end");
    if (r["idle_ms"]) c.idle_ms = static_cast<uint32_t>(rd.uint(r["idle_ms"], "replay.idle_ms", 1, 3600000));
  }

  if (const auto wr = root["window_ring"]; wr && !wr.IsNull()) {
    rd.check_keys(wr, "window_ring", {"size", "on_full"});
    if (wr["size"]) {
      c.window_ring = static_cast<uint32_t>(rd.uint(wr["size"], "window_ring.size", 64, 1u << 20));
      if ((c.window_ring & (c.window_ring - 1)) != 0) rd.fail("window_ring.size", "must be a power of two");
    }
    if (wr["on_full"]) {
      const std::string s = rd.str(wr["on_full"], "window_ring.on_full");
      if (s == "drop") c.ring_full = RingFullPolicy::kDrop;
      else if (s == "wait") c.ring_full = RingFullPolicy::kWait;
      else rd.fail("window_ring.on_full", "expected drop or wait, got '" + s + "'");
    }
  }

  if (const auto ex = root["exporters"]; ex && !ex.IsNull()) {
    rd.check_keys(ex, "exporters", {"ipfix"});
    if (const auto ip = ex["ipfix"]; ip && !ip.IsNull()) {
      const std::string p = "exporters.ipfix";
      rd.check_keys(ip, p, {"collector", "transport", "observation_domain", "template_refresh", "active_timeout",
                            "idle_timeout", "mtu", "ring_size", "buffer_records", "verdict_wait"});
      ExportConfig e;
      if (!ip["collector"]) rd.fail(p + ".collector", "missing: give HOST:PORT of the collector, e.g. 127.0.0.1:4739");
      if (const std::string err = parse_collector(rd.str(ip["collector"], p + ".collector"), &e.host, &e.port); !err.empty())
        rd.fail(p + ".collector", err);
      if (ip["transport"]) {
        const std::string t = rd.str(ip["transport"], p + ".transport");
        if (t == "udp") e.transport = ExportConfig::Transport::kUdp;
        else if (t == "tcp") e.transport = ExportConfig::Transport::kTcp;
        else rd.fail(p + ".transport", "expected udp or tcp, got '" + t + "'");
      }
      if (ip["observation_domain"])
        e.observation_domain = static_cast<uint32_t>(rd.uint(ip["observation_domain"], p + ".observation_domain", 0, 0xffffffffu));
      if (ip["template_refresh"]) e.template_refresh_s = rd.real(ip["template_refresh"], p + ".template_refresh", 0.1, 86400);
      if (ip["active_timeout"]) e.active_timeout_s = rd.real(ip["active_timeout"], p + ".active_timeout", 0.1, 86400);
      if (ip["idle_timeout"]) e.idle_timeout_s = rd.real(ip["idle_timeout"], p + ".idle_timeout", 0.001, 86400);
      if (ip["mtu"]) e.mtu = static_cast<uint32_t>(rd.uint(ip["mtu"], p + ".mtu", 576, 65535));
      if (ip["ring_size"]) {
        e.ring_size = static_cast<uint32_t>(rd.uint(ip["ring_size"], p + ".ring_size", 64, 1u << 24));
        if ((e.ring_size & (e.ring_size - 1)) != 0) rd.fail(p + ".ring_size", "must be a power of two, e.g. 16384");
      }
      if (ip["buffer_records"])
        e.buffer_records = static_cast<uint32_t>(rd.uint(ip["buffer_records"], p + ".buffer_records", 0, 1u << 26));
      if (ip["verdict_wait"]) e.verdict_wait_s = rd.real(ip["verdict_wait"], p + ".verdict_wait", 0, 3600);
      // The flow table has one idle timeout: an exporter's must agree with it when both are given.
      if (e.idle_timeout_s > 0 && root["flow_table"] && root["flow_table"]["idle_timeout_s"] &&
          std::fabs(e.idle_timeout_s - c.idle_timeout_s) > 1e-9)
        rd.fail(p + ".idle_timeout", "differs from flow_table.idle_timeout_s (" + std::to_string(c.idle_timeout_s) +
                                         "): flows have one idle timeout; remove one of the two keys");
      if (e.idle_timeout_s > 0) c.idle_timeout_s = e.idle_timeout_s;
      c.ipfix = e;
    }
  }
  if (!c.group.empty() && c.user.empty()) rd.fail("group", "needs user: (the group of which service user?)");
  try {
    resolve_run_paths(c, run_dir_yaml);
  } catch (const ConfigError& e) {
    rd.fail("", e.what());
  }
  return c;
}

void resolve_run_paths(Config& c, const std::string& run_dir_yaml) {
  if (!run_dir_yaml.empty()) {
    c.run_dir = run_dir_yaml;
  } else {
    const std::string base = run_base();
    if (base.empty() || base[0] != '/')
      throw ConfigError("$FLOWPICD_RUN_DIR must be an absolute path, got '" + base + "'");
    c.run_dir = base + "/" + c.instance;
  }
  while (c.run_dir.size() > 1 && c.run_dir.back() == '/') c.run_dir.pop_back();
  auto inside = [&](const std::string& p) { return p.empty() || p[0] == '/' ? p : c.run_dir + "/" + p; };
  c.control_socket = inside(c.control_socket);
  if (c.verdicts != "stdout" && c.verdicts != "none") c.verdicts = inside(c.verdicts);
  for (auto& p : c.ports) {
    if (p.is_pci() || p.device.rfind("net_memif", 0) != 0) continue;
    std::stringstream ss(p.device);
    std::string part, out;
    std::getline(ss, part, ',');
    out = part;
    bool relative = false, abstract_given = false, abstract_yes = false;
    std::vector<std::string> args;
    while (std::getline(ss, part, ',')) args.push_back(part);
    for (const auto& a : args) {
      if (a.rfind("socket-abstract=", 0) == 0) {
        abstract_given = true;
        abstract_yes = a.substr(16) != "no";
      }
    }
    for (auto& a : args) {
      if (a.rfind("socket=", 0) == 0 && a.size() > 7 && a[7] != '/' && !abstract_yes) {
        a = "socket=" + c.run_dir + "/" + a.substr(7);
        relative = true;
      }
      out += "," + a;
    }
    // memif's sockets are abstract by default in DPDK 22.11: a file in the run dir needs "no".
    if (relative && !abstract_given) out += ",socket-abstract=no";
    p.device = out;
  }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw ConfigError("config " + path + ": cannot open the file (check the path given to -c)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path, overrides);
}

}  // namespace flowpic
