// flowpicctl: the control client of a running flowpicd (protocol: docs/control.md).
// Exit codes: 0 ok, 1 flowpicd refused or failed the command, 2 usage error,
//             3 cannot connect (socket missing, permission, nobody listening), 4 timeout.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/flow_key.hpp"
#include "common/printable.hpp"
#include "common/run_dir.hpp"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

enum Exit { kOk = 0, kRefused = 1, kUsage = 2, kConnect = 3, kTimeout = 4 };

struct Options {
  std::string socket_path;  // -s, else from -i, $FLOWPIC_SOCKET or the one running instance
  bool json_out = false;
  int timeout_ms = 10000;
  std::vector<unsigned> allow_uids;  // besides root and the caller: who may serve the socket
};

struct CallError {
  int exit_code;
  std::string code;
  std::string message;
};

// One request on a fresh connection. Returns the reply object or throws CallError.
json call(const Options& o, const std::string& cmd, const json& args) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  auto left_ms = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  };
  auto timeout = [&](const char* what) {
    return CallError{kTimeout, "timeout",
                     std::string("timed out after ") + std::to_string(o.timeout_ms) + " ms " + what +
                         " (" + o.socket_path + ")"};
  };
  sockaddr_un addr{};
  if (o.socket_path.size() >= sizeof(addr.sun_path))
    throw CallError{kConnect, "connect", "socket path too long: " + o.socket_path};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, o.socket_path.c_str(), o.socket_path.size() + 1);

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw CallError{kConnect, "connect", std::string("socket(): ") + std::strerror(errno)};
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  // A Unix connect either completes at once or fails with EAGAIN when the backlog is full.
  for (;;) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    const int e = errno;
    if (e == EAGAIN || e == EINTR) {
      if (left_ms() == 0) throw timeout("waiting to connect");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    std::string hint;
    if (e == ENOENT || e == ECONNREFUSED) hint = " (is flowpicd running? name the instance with -i or the socket with -s)";
    else if (e == EACCES || e == EPERM) hint = " (the socket is mode 0600: run as the user that runs flowpicd)";
    throw CallError{kConnect, "connect",
                    "cannot connect to " + o.socket_path + ": " + std::strerror(e) + hint};
  }
  // Who serves the socket? A path in a shared directory can be bound by any local user first
  // (issue 16: a squatter answered `model load`). Only root, the caller or --allow-uid may.
  {
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0)
      throw CallError{kConnect, "peer", std::string("cannot tell who serves ") + o.socket_path + ": " + std::strerror(errno)};
    const uid_t uid = peer.uid;
    const bool allowed = uid == 0 || uid == ::getuid() ||
                         std::find(o.allow_uids.begin(), o.allow_uids.end(), static_cast<unsigned>(uid)) != o.allow_uids.end();
    if (!allowed)
      throw CallError{kConnect, "peer",
                      o.socket_path + " is served by uid " + std::to_string(uid) + " (pid " + std::to_string(peer.pid) +
                          "), not by root or you: refusing to talk to it (if that is flowpicd's service user, pass "
                          "--allow-uid " + std::to_string(uid) + ")"};
  }

  std::string out = json{{"cmd", cmd}, {"args", args}}.dump() + "\n";
  size_t off = 0;
  bool write_failed = false;
  while (off < out.size()) {
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, left_ms());
    if (n == 0) throw timeout("sending the request");
    if (n < 0 && errno == EINTR) continue;
    const ssize_t w = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      continue;
    } else {
      write_failed = true;  // flowpicd may have answered (e.g. request too large): read it
      break;
    }
  }

  std::string in;
  char buf[65536];
  for (;;) {
    const size_t nl = in.find('\n');
    if (nl != std::string::npos) {
      in.resize(nl);
      break;
    }
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, left_ms());
    if (n == 0) throw timeout("waiting for the reply");
    if (n < 0) {
      if (errno == EINTR) continue;
      throw CallError{kRefused, "io", std::string("poll(): ") + std::strerror(errno)};
    }
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r > 0) {
      in.append(buf, static_cast<size_t>(r));
    } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      continue;
    } else {
      if (!in.empty()) break;
      throw CallError{kRefused, "closed",
                      std::string("flowpicd closed the connection without a reply") +
                          (write_failed ? " while the request was being sent" : "")};
    }
  }
  json reply = json::parse(in, nullptr, false);
  if (reply.is_discarded() || !reply.is_object() || !reply.contains("ok"))
    throw CallError{kRefused, "bad_reply", "flowpicd sent a reply that is not protocol JSON"};
  return reply;
}

// ---------------------------------------------------------------- formatting

std::string str(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return flowpic::printable(v.get<std::string>());
  if (v.is_number_float()) {
    char b[32];
    const double d = v.get<double>();
    std::snprintf(b, sizeof b, std::fabs(d) < 10 ? "%.3f" : "%.1f", d);
    return b;
  }
  if (v.is_array()) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + str(v[i]);
    return s.empty() ? "-" : s;
  }
  if (v.is_object()) {
    std::string s;
    for (const auto& [k, x] : v.items()) s += (s.empty() ? "" : " ") + flowpic::printable(k) + "=" + str(x);
    return s.empty() ? "-" : s;
  }
  return v.dump();
}

std::string rate_str(double r) {
  char b[32];
  if (r >= 1e9) std::snprintf(b, sizeof b, "%.2fG", r / 1e9);
  else if (r >= 1e6) std::snprintf(b, sizeof b, "%.2fM", r / 1e6);
  else if (r >= 1e4) std::snprintf(b, sizeof b, "%.1fk", r / 1e3);
  else std::snprintf(b, sizeof b, "%.1f", r);
  return b;
}

std::string duration_str(double s) {
  if (!(s >= 0)) return "-";
  uint64_t t = static_cast<uint64_t>(s);
  char b[64];
  const uint64_t d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;
  if (d) std::snprintf(b, sizeof b, "%llud %02lluh %02llum %02llus", (unsigned long long)d, (unsigned long long)h, (unsigned long long)m, (unsigned long long)sec);
  else if (h) std::snprintf(b, sizeof b, "%lluh %02llum %02llus", (unsigned long long)h, (unsigned long long)m, (unsigned long long)sec);
  else if (m) std::snprintf(b, sizeof b, "%llum %02llus", (unsigned long long)m, (unsigned long long)sec);
  else std::snprintf(b, sizeof b, "%.1fs", s);
  return b;
}

struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
  void print(std::ostream& os, const std::string& indent = "") const {
    // Cells hold names from the daemon (classes, ports, models): never raw control characters.
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : this->rows) {
      rows.emplace_back();
      for (const auto& cell : r) rows.back().push_back(flowpic::printable(cell));
    }
    std::vector<size_t> w(head.size());
    for (size_t c = 0; c < head.size(); ++c) w[c] = head[c].size();
    for (const auto& r : rows)
      for (size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
    // A column is numeric when every cell is a number or "-": right-align it, header included.
    auto numeric = [](const std::string& s) {
      return !s.empty() && std::isdigit(static_cast<unsigned char>(s[0]));
    };
    std::vector<bool> right(w.size(), false);
    for (size_t c = 1; c < w.size(); ++c) {
      bool any = false, all = true;
      for (const auto& r : rows) {
        const std::string& cell = c < r.size() ? r[c] : std::string();
        if (numeric(cell)) any = true;
        else if (cell != "-" && !cell.empty()) all = false;
      }
      right[c] = any && all;
    }
    auto line = [&](const std::vector<std::string>& r, bool) {
      std::string l = indent;
      for (size_t c = 0; c < w.size(); ++c) {
        const std::string cell = c < r.size() ? r[c] : "";
        const size_t pad = w[c] - cell.size();
        if (right[c]) l += std::string(pad, ' ') + cell;
        else l += cell + (c + 1 < w.size() ? std::string(pad, ' ') : "");
        if (c + 1 < w.size()) l += "  ";
      }
      while (!l.empty() && l.back() == ' ') l.pop_back();
      os << l << "\n";
    };
    line(head, true);
    for (const auto& r : rows) line(r, false);
  }
};

void flatten_into(const json& v, const std::string& prefix, std::vector<std::pair<std::string, json>>& out) {
  if (v.is_object() && !v.empty()) {
    for (const auto& [k, x] : v.items()) flatten_into(x, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out.emplace_back(prefix, v);
  }
}

// A table from an array of objects: columns are the union of (flattened) keys, first-seen order.
Table generic_table(const json& arr) {
  Table t;
  std::vector<std::string> cols;
  std::vector<std::map<std::string, json>> rows;
  for (const json& o : arr) {
    std::vector<std::pair<std::string, json>> kv;
    flatten_into(o, "", kv);
    std::map<std::string, json> row;
    for (auto& [k, v] : kv) {
      if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
      row[k] = v;
    }
    rows.push_back(std::move(row));
  }
  // Identity columns first (replies come with keys sorted), the rest as they come.
  static const std::vector<std::string> kFirst = {"name", "flow", "lcore", "port_id", "role", "port", "queue"};
  std::stable_sort(cols.begin(), cols.end(), [](const std::string& a, const std::string& b) {
    auto rank = [](const std::string& k) {
      auto it = std::find(kFirst.begin(), kFirst.end(), k);
      return it == kFirst.end() ? kFirst.size() : static_cast<size_t>(it - kFirst.begin());
    };
    return rank(a) < rank(b);
  });
  for (const auto& c : cols) {
    std::string h = c;
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char ch) { return ch == '_' ? ' ' : std::toupper(ch); });
    t.head.push_back(h);
  }
  for (const auto& r : rows) {
    std::vector<std::string> cells;
    for (const auto& c : cols) {
      auto it = r.find(c);
      cells.push_back(it == r.end() ? "" : str(it->second));
    }
    t.rows.push_back(std::move(cells));
  }
  return t;
}

uint64_t u(const json& o, std::initializer_list<const char*> path) {
  const json* cur = &o;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return 0;
    cur = &(*cur)[k];
  }
  return cur->is_number() ? cur->get<uint64_t>() : 0;
}

std::string model_line(const json& m) {
  if (!m.is_object()) return "-";
  std::string s = flowpic::printable(m.value("id", std::string("?")));
  std::vector<std::string> bits;
  if (m.contains("arch")) bits.push_back(str(m["arch"]));
  if (m.contains("classes") && m["classes"].is_array())
    bits.push_back(std::to_string(m["classes"].size()) + " classes: " + str(m["classes"]));
  if (!bits.empty()) {
    s += "  (";
    for (size_t i = 0; i < bits.size(); ++i) s += (i ? ", " : "") + bits[i];
    s += ")";
  }
  return s;
}

void print_status(const json& r) {
  std::cout << "flowpicd " << str(r.value("version", json())) << "   up "
            << duration_str(r.value("uptime_s", -1.0)) << "   clock " << str(r.value("clock", json()))
            << "\n";
  if (r.contains("model")) {
    std::cout << "model      " << model_line(r["model"]) << "\n";
    if (r["model"].is_object() && r["model"].contains("picture"))
      std::cout << "picture    " << str(r["model"]["picture"]) << "\n";
  }
  if (r.contains("placement") && r["placement"].is_object())
    for (const auto& [k, v] : r["placement"].items()) {
      std::string key = k;
      key.resize(std::max<size_t>(key.size(), 10), ' ');
      std::cout << key << " " << str(v) << "\n";
    }
  if (r.contains("ports") && r["ports"].is_array() && !r["ports"].empty()) {
    std::cout << "\nports\n";
    generic_table(r["ports"]).print(std::cout, "  ");
  }
  if (r.contains("lcores") && r["lcores"].is_array() && !r["lcores"].empty()) {
    std::cout << "\nlcores\n";
    generic_table(r["lcores"]).print(std::cout, "  ");
  }
}

// prev may be null (first poll): then no rate columns.
void print_stats(const json& r, const json& prev, double dt) {
  const bool rates = prev.is_object() && dt > 0;
  auto rate = [&](uint64_t now, uint64_t before) {
    return rate_str(now >= before ? static_cast<double>(now - before) / dt : 0.0);
  };
  if (r.contains("uptime_s")) std::cout << "uptime " << duration_str(r["uptime_s"].get<double>()) << "\n";
  if (r.contains("ports") && r["ports"].is_array()) {
    Table t;
    t.head = {"PORT", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "DROPPED"};
    if (rates) t.head.insert(t.head.end(), {"RX PKT/S", "TX PKT/S", "RX BIT/S"});
    std::vector<std::string> reasons;
    for (size_t i = 0; i < r["ports"].size(); ++i) {
      const json& p = r["ports"][i];
      uint64_t dropped = 0;
      std::string why;
      if (p.contains("dropped") && p["dropped"].is_object())
        for (const auto& [k, v] : p["dropped"].items())
          if (v.is_number()) {
            dropped += v.get<uint64_t>();
            if (v.get<uint64_t>()) why += " " + k + "=" + std::to_string(v.get<uint64_t>());
          }
      const std::string name = str(p.value("name", json()));
      if (!why.empty()) reasons.push_back(name + ":" + why);
      std::vector<std::string> row = {name, std::to_string(u(p, {"rx", "packets"})),
                                      std::to_string(u(p, {"rx", "bytes"})), std::to_string(u(p, {"tx", "packets"})),
                                      std::to_string(u(p, {"tx", "bytes"})), std::to_string(dropped)};
      if (rates) {
        const json pp = prev.contains("ports") && prev["ports"].is_array() && i < prev["ports"].size()
                            ? prev["ports"][i] : json::object();
        row.push_back(rate(u(p, {"rx", "packets"}), u(pp, {"rx", "packets"})));
        row.push_back(rate(u(p, {"tx", "packets"}), u(pp, {"tx", "packets"})));
        row.push_back(rate(8 * u(p, {"rx", "bytes"}), 8 * u(pp, {"rx", "bytes"})));
      }
      t.rows.push_back(std::move(row));
    }
    std::cout << "\n";
    t.print(std::cout);
    for (const auto& w : reasons) std::cout << "  dropped " << w << "\n";
  }
  if (r.contains("lcores") && r["lcores"].is_array() && !r["lcores"].empty()) {
    std::cout << "\n";
    Table t = generic_table(r["lcores"]);
    // Dozens of counters per lcore (parse results by reason...): show the columns that have
    // something to say; --json has them all.
    std::size_t hidden = 0;
    for (std::size_t c = t.head.size(); c-- > 1;) {
      bool zero = true;
      for (const auto& row : t.rows) zero = zero && (c >= row.size() || row[c] == "0" || row[c].empty());
      if (zero && t.head[c] != "RX.PACKETS" && t.head[c] != "TX.PACKETS") {
        t.head.erase(t.head.begin() + static_cast<long>(c));
        for (auto& row : t.rows)
          if (c < row.size()) row.erase(row.begin() + static_cast<long>(c));
        ++hidden;
      }
    }
    if (rates) {
      t.head.push_back("RX PKT/S");
      for (size_t i = 0; i < t.rows.size(); ++i) {
        const json& lc = r["lcores"][i];
        const json pl = prev.contains("lcores") && prev["lcores"].is_array() && i < prev["lcores"].size()
                            ? prev["lcores"][i] : json::object();
        t.rows[i].push_back(rate(u(lc, {"rx", "packets"}), u(pl, {"rx", "packets"})));
      }
    }
    t.print(std::cout);
    if (hidden) std::cout << "(" << hidden << " lcore counters at 0 not shown; --json shows every counter)\n";
  }
  if (r.contains("stages") && r["stages"].is_object()) {
    std::cout << "\n";
    for (const auto& [stage, v] : r["stages"].items()) {
      std::vector<std::pair<std::string, json>> kv;
      flatten_into(v, "", kv);
      std::string line = stage;
      line.resize(std::max<size_t>(line.size(), 10), ' ');
      for (const auto& [k, x] : kv) line += " " + k + "=" + str(x);
      std::cout << line << "\n";
    }
  }
  if (r.contains("classes") && r["classes"].is_object() && !r["classes"].empty()) {
    Table t;
    t.head = {"CLASS", "VERDICTS"};
    if (rates) t.head.push_back("PER S");
    for (const auto& [cls, n] : r["classes"].items()) {
      std::vector<std::string> row = {cls, str(n)};
      if (rates) row.push_back(rate(n.is_number() ? n.get<uint64_t>() : 0, u(prev, {"classes", cls.c_str()})));
      t.rows.push_back(std::move(row));
    }
    std::cout << "\n";
    t.print(std::cout);
  }
}

void print_flow_table(const json& flows) {
  Table t;
  t.head = {"FLOW", "CLASS", "CONF", "PACKETS", "BYTES", "WINDOW", "WIN PKTS", "LCORE"};
  for (const json& f : flows) {
    t.rows.push_back({str(f.value("flow", json())), str(f.value("class", json())),
                      str(f.value("confidence", json())), str(f.value("packets", json())),
                      str(f.value("bytes", json())), str(f.value("window_index", json())),
                      str(f.value("window_packets", json())), str(f.value("lcore", json()))});
  }
  t.print(std::cout);
  if (flows.empty()) std::cout << "(no flows)\n";
}

void print_kv(const json& o) {
  std::vector<std::pair<std::string, json>> kv;
  flatten_into(o, "", kv);
  size_t w = 0;
  for (const auto& [k, v] : kv) w = std::max(w, k.size());
  for (const auto& [k, v] : kv) std::cout << k << std::string(w - k.size() + 2, ' ') << str(v) << "\n";
}

void print_model_show(const json& r) {
  auto one = [](const char* label, const json& m) {
    std::cout << label << model_line(m);
    if (m.is_object() && m.contains("loaded_at")) std::cout << "  loaded " << str(m["loaded_at"]);
    std::cout << "\n";
    if (m.is_object() && m.contains("path")) std::cout << "          from " << str(m["path"]) << "\n";
  };
  one("current   ", r.value("current", json()));
  one("previous  ", r.value("previous", json()));
}

// Is a flowpicd listening on the socket at `path`? (A non-blocking connect, closed at once.)
bool listening(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int e = errno;
  ::close(fd);
  return rc == 0 || e == EAGAIN;
}

// No -s, no -i, no $FLOWPIC_SOCKET: the control socket of the one instance running under
// RUN_BASE (RUN_BASE/NAME/control.sock with a listener). Throws CallError when none or several run.
std::string discover_socket() {
  namespace fs = std::filesystem;
  const std::string base = flowpic::run_base();
  std::vector<std::string> live, unreadable;
  std::error_code ec;
  fs::directory_iterator it(base, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    throw CallError{kConnect, "connect",
                    "cannot read " + base + ": " + ec.message() +
                        " (run as root or as flowpicd's user, or name the socket with -s)"};
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string sock = it->path().string() + "/" + flowpic::kControlSocketName;
    std::error_code e2;
    const auto st = fs::symlink_status(sock, e2);
    if (e2 && e2 != std::errc::no_such_file_or_directory) {
      unreadable.push_back(name);
      continue;
    }
    if (st.type() == fs::file_type::socket && listening(sock)) live.push_back(name);
  }
  std::sort(live.begin(), live.end());
  if (live.size() == 1) return base + "/" + live[0] + "/" + flowpic::kControlSocketName;
  std::string list;
  for (const auto& n : live) list += (list.empty() ? "" : ", ") + n;
  if (live.size() > 1)
    throw CallError{kUsage, "usage", "several flowpicd instances run under " + base + " (" + list +
                                         "): choose one with -i NAME"};
  std::string more;
  for (const auto& n : unreadable) more += (more.empty() ? "" : ", ") + n;
  throw CallError{kConnect, "connect",
                  "no flowpicd instance runs (no " + std::string(flowpic::kControlSocketName) + " with a listener under " +
                      base + "/*/" + (more.empty() ? "" : "; not allowed to look into " + more) +
                      "): start one, or name its instance with -i or its socket with -s"};
}

int report_error(const Options& o, const CallError& e) {
  if (o.json_out)
    std::cout << json{{"ok", false}, {"error", e.message}, {"code", e.code}}.dump(2) << "\n";
  std::cerr << "flowpicctl: " << e.message << "\n";
  return e.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string instance;

  CLI::App app{"flowpicctl: control a running flowpicd (status, counters, flows, live model swap).\n"
               "Exit codes: 0 ok, 1 flowpicd refused or failed the command, 2 usage error,\n"
               "3 cannot connect, 4 timeout.\n"
               "Which flowpicd: -s SOCKET, else -i INSTANCE ($FLOWPICD_RUN_DIR or /run/flowpicd, then\n"
               "INSTANCE/control.sock), else $FLOWPIC_SOCKET, else the one instance running there."};
  auto* sock_opt = app.add_option("-s,--socket", o.socket_path, "control socket of flowpicd (a path)");
  app.add_option("-i,--instance", instance,
                 "flowpicd instance: its socket RUN_BASE/INSTANCE/control.sock, RUN_BASE = $FLOWPICD_RUN_DIR or "
                 "/run/flowpicd")
      ->excludes(sock_opt);
  app.add_flag("--json", o.json_out, "print raw JSON replies (for scripts)");
  app.add_option("--timeout", o.timeout_ms, "milliseconds to wait for a reply (default 10000)")
      ->check(CLI::Range(1, 3600 * 1000));
  app.add_option("--allow-uid", o.allow_uids,
                 "also trust a control socket served by this uid (flowpicd's service user); by default only root "
                 "and you")
      ->check(CLI::Range(0u, 4294967294u));
  app.require_subcommand(1);
  app.fallthrough();  // -s, --json, --timeout also after the command: `flowpicctl stats --json`

  app.add_subcommand("status", "version, uptime, ports, lcores and placement, model, clock");
  auto* stats = app.add_subcommand("stats", "counters per port, lcore, stage and class");
  double watch_s = 0;
  int count = 0;
  stats->add_option("--watch", watch_s, "poll every SECONDS and show rates")->check(CLI::Range(0.05, 86400.0));
  stats->add_option("--count", count, "with --watch: stop after N polls (default: until interrupted)")
      ->check(CLI::Range(1, 1 << 30));

  auto* flows = app.add_subcommand("flows", "inspect flows");
  flows->require_subcommand(1);
  auto* top = flows->add_subcommand("top", "the largest flows with their class");
  int top_n = 10;
  std::string by = "packets";
  top->add_option("-n", top_n, "how many flows (default 10)")->check(CLI::Range(1, 100000));
  top->add_option("--by", by, "order by packets or bytes (default packets)")
      ->check(CLI::IsMember({"packets", "bytes"}));
  auto* get = flows->add_subcommand("get", "one flow by its 5-tuple");
  std::string flow_text;
  get->add_option("FLOW", flow_text, "\"udp 1.2.3.4:5 -> 6.7.8.9:10\" (as flowpic prints it)")->required();

  auto* model = app.add_subcommand("model", "show, load or roll back the model");
  model->require_subcommand(1);
  model->add_subcommand("show", "the model serving verdicts and the previous one");
  auto* load = model->add_subcommand("load", "validate FILE and swap it in from the next window");
  std::string model_file;
  load->add_option("FILE", model_file, "model file")->required();
  model->add_subcommand("rollback", "return to the previous model");

  auto* outputs = app.add_subcommand("outputs", "output files");
  outputs->require_subcommand(1);
  outputs->add_subcommand("rotate", "reopen output files (after logrotate moved them)");

  auto* loglevel = app.add_subcommand("log-level", "set flowpicd's log level");
  std::string level;
  loglevel->add_option("LEVEL", level, "trace, debug, info, warn, error, critical or off")
      ->required()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }

  if (o.socket_path.empty()) {
    if (!instance.empty()) {
      if (!flowpic::valid_instance_name(instance)) {
        std::cerr << "flowpicctl: -i " << flowpic::printable(instance)
                  << ": not an instance name (letters, digits, _ - . @)\n";
        return kUsage;
      }
      o.socket_path = flowpic::run_base() + "/" + instance + "/" + flowpic::kControlSocketName;
    } else if (const char* env = std::getenv("FLOWPIC_SOCKET"); env && *env) {
      o.socket_path = env;
    } else {
      try {
        o.socket_path = discover_socket();
      } catch (const CallError& e) {
        return report_error(o, e);
      }
    }
  }

  std::string cmd;
  json args = json::object();
  if (app.got_subcommand("status")) {
    cmd = "status";
  } else if (app.got_subcommand(stats)) {
    cmd = "stats";
  } else if (app.got_subcommand(flows)) {
    if (flows->got_subcommand(top)) {
      cmd = "flows.top";
      args = {{"n", top_n}, {"by", by}};
    } else {
      flowpic::FlowKey key{};
      std::string err;
      if (!flowpic::parse_flow_key(flow_text, key, &err)) {
        std::cerr << "flowpicctl: bad flow '" << flow_text << "': " << err
                  << "\n  expected e.g. \"udp 1.2.3.4:5 -> 6.7.8.9:10\" or \"tcp [2001:db8::1]:443 -> [2001:db8::2]:5000\"\n";
        return kUsage;
      }
      cmd = "flows.get";
      args = {{"flow", flowpic::to_string(key)}};
    }
  } else if (app.got_subcommand(model)) {
    if (model->got_subcommand("show")) {
      cmd = "model.show";
    } else if (model->got_subcommand(load)) {
      cmd = "model.load";
      // flowpicd runs elsewhere (cwd /): send an absolute path.
      std::error_code ec;
      std::filesystem::path p = std::filesystem::absolute(model_file, ec);
      args = {{"path", ec ? model_file : p.lexically_normal().string()}};
    } else {
      cmd = "model.rollback";
    }
  } else if (app.got_subcommand(outputs)) {
    cmd = "outputs.rotate";
  } else if (app.got_subcommand(loglevel)) {
    cmd = "log.level";
    args = {{"level", level}};
  }

  const bool watching = cmd == "stats" && watch_s > 0;
  json prev;
  auto prev_t = Clock::now();
  for (int polls = 0;; ++polls) {
    json reply;
    const auto t = Clock::now();
    try {
      reply = call(o, cmd, args);
    } catch (const CallError& e) {
      return report_error(o, e);
    }
    if (!reply.value("ok", false)) {
      const std::string msg = reply.value("error", std::string("command failed"));
      const std::string code = reply.value("code", std::string("failed"));
      if (o.json_out) std::cout << reply.dump(2) << "\n";
      std::cerr << "flowpicctl: " << cmd << ": " << msg << " [" << code << "]\n";
      return kRefused;
    }
    const json& r = reply["result"];
    const double dt = std::chrono::duration<double>(t - prev_t).count();
    if (o.json_out) {
      if (watching) {
        // One line per poll (JSON Lines), with the rates computed since the previous poll.
        json line = r;
        if (prev.is_object() && dt > 0) {
          json rates = {{"interval_s", dt}, {"ports", json::array()}, {"classes", json::object()}};
          if (r.contains("ports") && r["ports"].is_array())
            for (size_t i = 0; i < r["ports"].size(); ++i) {
              const json& p = r["ports"][i];
              const json pp = prev.contains("ports") && i < prev["ports"].size() ? prev["ports"][i] : json::object();
              auto d = [&](std::initializer_list<const char*> k) {
                const uint64_t a = u(p, k), b = u(pp, k);
                return a >= b ? static_cast<double>(a - b) / dt : 0.0;
              };
              rates["ports"].push_back({{"name", p.value("name", json())},
                                        {"rx_packets_per_s", d({"rx", "packets"})},
                                        {"tx_packets_per_s", d({"tx", "packets"})},
                                        {"rx_bits_per_s", 8 * d({"rx", "bytes"})},
                                        {"tx_bits_per_s", 8 * d({"tx", "bytes"})}});
            }
          if (r.contains("classes") && r["classes"].is_object())
            for (const auto& [cls, n] : r["classes"].items()) {
              const uint64_t a = n.is_number() ? n.get<uint64_t>() : 0, b = u(prev, {"classes", cls.c_str()});
              rates["classes"][cls] = a >= b ? static_cast<double>(a - b) / dt : 0.0;
            }
          line["rates"] = rates;
        }
        std::cout << line.dump() << std::endl;
      } else {
        std::cout << r.dump(2) << "\n";
      }
    } else if (cmd == "status") {
      print_status(r);
    } else if (cmd == "stats") {
      if (watching && isatty(STDOUT_FILENO)) std::cout << "\033[H\033[2J";
      if (watching) {
        char ts[32];
        const time_t now = time(nullptr);
        struct tm tmv;
        strftime(ts, sizeof ts, "%H:%M:%S", localtime_r(&now, &tmv));
        std::cout << (polls ? "\n" : "") << "--- " << ts << (prev.is_object() ? "" : "  (rates from the next poll)") << "\n";
      }
      print_stats(r, prev, dt);
      std::cout << std::flush;
    } else if (cmd == "flows.top") {
      print_flow_table(r.value("flows", json::array()));
    } else if (cmd == "flows.get") {
      print_kv(r.contains("flow") && r["flow"].is_object() ? r["flow"] : r);
    } else if (cmd == "model.show") {
      print_model_show(r);
    } else if (cmd == "model.load") {
      std::cout << "loaded model " << str(r.value("id", json())) << " (previous "
                << str(r.value("previous", json())) << "), applied from the "
                << str(r.value("applied_from", json("next window"))) << "\n";
    } else if (cmd == "model.rollback") {
      std::cout << "rolled back to model " << str(r.value("id", json())) << " (retired "
                << str(r.value("previous", json())) << ")\n";
    } else if (cmd == "outputs.rotate") {
      const json files = r.value("reopened", json::array());
      std::cout << "reopened " << files.size() << " output file(s)" << (files.empty() ? "" : ": ")
                << (files.empty() ? "" : str(files)) << "\n";
    } else if (cmd == "log.level") {
      std::cout << "log level " << str(r.value("previous", json())) << " -> " << str(r.value("level", json()))
                << "\n";
    }
    if (!watching || (count > 0 && polls + 1 >= count)) break;
    prev = r;
    prev_t = t;
    std::this_thread::sleep_until(t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(watch_s)));
  }
  return kOk;
}
