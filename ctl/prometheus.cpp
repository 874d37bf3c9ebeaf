#include "ctl/prometheus.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <list>
#include <set>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace flowpic {

using nlohmann::json;

namespace {

bool name_char(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon_ok && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

std::string sanitize_name(const std::string& in, bool colon_ok) {
  std::string out = in.empty() ? std::string("_") : in;
  for (size_t i = 0; i < out.size(); ++i)
    if (!name_char(out[i], i == 0, colon_ok)) out[i] = '_';
  if (out[0] >= '0' && out[0] <= '9') out.insert(out.begin(), '_');
  return out;
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  // Shortest text that reads back as the same double (0.0001, not 9.9999999999999991e-05).
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

}  // namespace

std::string render_prometheus(const std::vector<Metric>& metrics) {
  // Group by final name, keeping first-seen order: a family's lines must be contiguous.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Metric*>> by_name;
  for (const Metric& m : metrics) {
    std::string name = sanitize_name(m.name, true);
    if (m.type == Metric::Type::kCounter &&
        (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0))
      name += "_total";
    if (!by_name.count(name)) order.push_back(name);
    by_name[name].push_back(&m);
  }
  std::string out;
  for (const std::string& name : order) {
    const auto& fams = by_name[name];
    const Metric& first = *fams.front();
    out += "# HELP " + name + " " + escape_help(first.help.empty() ? name : first.help) + "\n";
    out += "# TYPE " + name + (first.type == Metric::Type::kCounter ? " counter\n" : " gauge\n");
    std::set<std::string> seen;  // a series appears once, even if two families repeated it
    for (const Metric* m : fams) {
      for (const MetricSample& s : m->samples) {
        std::string line = name;
        if (!s.labels.empty()) {
          line += '{';
          bool comma = false;
          for (const auto& [k, v] : s.labels) {
            std::string ln = sanitize_name(k, false);
            if (ln.rfind("__", 0) == 0) ln.insert(ln.begin(), 'x');  // __ is reserved
            if (comma) line += ',';
            line += ln + "=\"" + escape_label_value(v) + "\"";
            comma = true;
          }
          line += '}';
        }
        if (!seen.insert(line).second) continue;
        out += line + " " + format_value(s.value) + "\n";
      }
    }
  }
  return out;
}

Metric model_info_metric(const std::string& model_id, const std::vector<std::string>& classes) {
  std::string joined;
  for (size_t i = 0; i < classes.size(); ++i) joined += (i ? "," : "") + classes[i];
  Metric m{"flowpic_model_info", "The model serving verdicts (always 1).", Metric::Type::kGauge, {}};
  m.samples.push_back({{{"model", model_id}, {"classes", joined}}, 1.0});
  return m;
}

namespace {

// Accumulates families by name while walking the snapshots.
struct Families {
  std::vector<Metric> list;
  std::map<std::string, size_t> index;
  void add(const std::string& name, Metric::Type type, const std::string& help,
           std::map<std::string, std::string> labels, double v) {
    auto it = index.find(name);
    if (it == index.end()) {
      index[name] = list.size();
      list.push_back(Metric{name, help, type, {}});
      it = index.find(name);
    }
    list[it->second].samples.push_back({std::move(labels), v});
  }
};

bool is_gauge_key(const std::string& k) {
  static const std::set<std::string> kGauges = {"active", "capacity", "queue_depth", "depth",
                                                "occupancy", "in_flight", "size", "used"};
  return kGauges.count(k) > 0;
}

// Walks an object of numbers (possibly nested). Nested objects named "dropped" become a
// reason label; objects of quantiles (p50, p99, ...) become a quantile label; *_us and *_ms
// leaves are converted to seconds.
void walk(Families& f, const std::string& prefix, const json& obj,
          const std::map<std::string, std::string>& labels, const std::string& what,
          const std::string& path = "") {
  for (const auto& [raw_key, v] : obj.items()) {
    const std::string k = sanitize_name(raw_key, false);
    const std::string key = path.empty() ? raw_key : path + "." + raw_key;  // for help texts
    if (v.is_object()) {
      if (raw_key == "dropped" || raw_key == "drops") {
        for (const auto& [reason, n] : v.items()) {
          if (!n.is_number()) continue;
          auto l = labels;
          l["reason"] = reason;
          f.add(prefix + "_dropped_total", Metric::Type::kCounter,
                what + " " + key + ", by reason.", l, n.get<double>());
        }
        continue;
      }
      bool quantiles = !v.empty();
      for (const auto& [qk, qv] : v.items())
        quantiles = quantiles && qk.size() > 1 && qk[0] == 'p' && qv.is_number() &&
                    qk.find_first_not_of("0123456789", 1) == std::string::npos;
      if (quantiles) {
        double scale = 1;
        std::string base = k;
        if (k.size() > 3 && k.compare(k.size() - 3, 3, "_us") == 0) { scale = 1e6; base = k.substr(0, k.size() - 3) + "_seconds"; }
        else if (k.size() > 3 && k.compare(k.size() - 3, 3, "_ms") == 0) { scale = 1e3; base = k.substr(0, k.size() - 3) + "_seconds"; }
        for (const auto& [qk, qv] : v.items()) {
          auto l = labels;
          std::string q = "0." + qk.substr(1);  // p50 -> 0.5, p99 -> 0.99, p999 -> 0.999
          while (q.size() > 3 && q.back() == '0') q.pop_back();
          l["quantile"] = q;
          f.add(prefix + "_" + base, Metric::Type::kGauge, what + " " + key + " quantiles.", l,
                qv.get<double>() / scale);  // divide: 100/1e6 prints as 0.0001
        }
        continue;
      }
      walk(f, prefix + "_" + k, v, labels, what, key);
      continue;
    }
    if (!v.is_number() && !v.is_boolean()) continue;
    const double x = v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>();
    if (k.size() > 3 && k.compare(k.size() - 3, 3, "_us") == 0) {
      f.add(prefix + "_" + k.substr(0, k.size() - 3) + "_seconds", Metric::Type::kGauge, what + " " + key + ".", labels, x / 1e6);
    } else if (k.size() > 3 && k.compare(k.size() - 3, 3, "_ms") == 0) {
      f.add(prefix + "_" + k.substr(0, k.size() - 3) + "_seconds", Metric::Type::kGauge, what + " " + key + ".", labels, x / 1e3);
    } else if (is_gauge_key(raw_key) || !v.is_number_integer()) {
      f.add(prefix + "_" + k, Metric::Type::kGauge, what + " " + key + ".", labels, x);
    } else {
      f.add(prefix + "_" + k + "_total", Metric::Type::kCounter, what + " " + key + ".", labels, x);
    }
  }
}

}  // namespace

std::vector<Metric> metrics_from_snapshots(const json& stats, const json& status) {
  Families f;
  if (status.is_object()) {
    if (status.contains("version") && status["version"].is_string())
      f.add("flowpic_build_info", Metric::Type::kGauge, "flowpicd version (always 1).",
            {{"version", status["version"].get<std::string>()}}, 1);
    if (status.contains("uptime_s") && status["uptime_s"].is_number())
      f.add("flowpic_uptime_seconds", Metric::Type::kGauge, "Seconds since flowpicd started.", {},
            status["uptime_s"].get<double>());
    if (status.contains("model") && status["model"].is_object()) {
      const json& m = status["model"];
      std::vector<std::string> classes;
      if (m.contains("classes") && m["classes"].is_array())
        for (const auto& c : m["classes"]) if (c.is_string()) classes.push_back(c.get<std::string>());
      Metric info = model_info_metric(m.value("id", std::string("none")), classes);
      f.list.push_back(std::move(info));
      f.index["flowpic_model_info"] = f.list.size() - 1;
    }
  }
  if (!stats.is_object()) return std::move(f.list);
  if (stats.contains("ports") && stats["ports"].is_array()) {
    for (const json& p : stats["ports"]) {
      if (!p.is_object()) continue;
      std::map<std::string, std::string> l{{"port", p.value("name", std::to_string(p.value("port_id", 0)))}};
      for (const char* dir : {"rx", "tx"}) {
        if (!p.contains(dir) || !p[dir].is_object()) continue;
        for (const char* unit : {"packets", "bytes"})
          if (p[dir].contains(unit) && p[dir][unit].is_number())
            f.add(std::string("flowpic_port_") + dir + "_" + unit + "_total", Metric::Type::kCounter,
                  std::string(dir == std::string("rx") ? "Received " : "Transmitted ") + unit + " per port.", l,
                  p[dir][unit].get<double>());
      }
      if (p.contains("dropped") && p["dropped"].is_object())
        for (const auto& [reason, n] : p["dropped"].items())
          if (n.is_number()) {
            auto ll = l;
            ll["reason"] = reason;
            f.add("flowpic_port_dropped_packets_total", Metric::Type::kCounter,
                  "Received packets not forwarded, by reason.", ll, n.get<double>());
          }
      // Dropped by the device or the kernel before flowpicd received them (not part of rx).
      if (p.contains("device") && p["device"].is_object())
        for (const auto& [reason, n] : p["device"].items())
          if (n.is_number()) {
            auto ll = l;
            ll["reason"] = reason;
            f.add("flowpic_port_device_dropped_packets_total", Metric::Type::kCounter,
                  "Packets the device or the kernel dropped before flowpicd received them, by reason.", ll,
                  n.get<double>());
          }
    }
  }
  if (stats.contains("lcores") && stats["lcores"].is_array()) {
    for (const json& lc : stats["lcores"]) {
      if (!lc.is_object()) continue;
      std::map<std::string, std::string> l{{"lcore", lc.contains("lcore") ? lc["lcore"].dump() : "?"}};
      json rest = lc;
      for (const char* k : {"lcore", "port", "queue", "role", "socket", "numa"}) rest.erase(k);
      walk(f, "flowpic_lcore", rest, l, "Per polling lcore:");
    }
  }
  if (stats.contains("stages") && stats["stages"].is_object())
    for (const auto& [stage, obj] : stats["stages"].items())
      if (obj.is_object()) walk(f, "flowpic_" + sanitize_name(stage, false), obj, {}, "Stage " + stage + ":");
  if (stats.contains("classes") && stats["classes"].is_object())
    for (const auto& [cls, n] : stats["classes"].items())
      if (n.is_number())
        f.add("flowpic_verdicts_total", Metric::Type::kCounter, "Verdicts per class.", {{"class", cls}},
              n.get<double>());
  if (stats.contains("outputs") && stats["outputs"].is_object())
    for (const auto& [out, o] : stats["outputs"].items()) {
      if (!o.is_object()) continue;
      const std::map<std::string, std::string> l{{"output", out}};
      if (o.contains("lines") && o["lines"].is_number())
        f.add("flowpic_output_lines_total", Metric::Type::kCounter, "Lines written per output.", l, o["lines"].get<double>());
      if (o.contains("dropped") && o["dropped"].is_number())
        f.add("flowpic_output_dropped_lines_total", Metric::Type::kCounter,
              "Lines lost per output (write error: full disk, closed pipe).", l, o["dropped"].get<double>());
      if (o.contains("write_errors") && o["write_errors"].is_number())
        f.add("flowpic_output_write_errors_total", Metric::Type::kCounter, "Failed writes per output.", l,
              o["write_errors"].get<double>());
    }
  return std::move(f.list);
}

// ---------------------------------------------------------------- HTTP server

namespace {

struct HttpClient {
  int fd = -1;
  std::string in;
  std::string out;
  size_t off = 0;
  std::chrono::steady_clock::time_point deadline;
  bool responded = false;
  bool draining = false;  // reply sent, write side shut, waiting for the peer to close
};

std::string http_reply(int status, const char* reason, const std::string& content_type,
                       const std::string& body, bool head, const std::string& extra = "") {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  r += "Content-Type: " + content_type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += extra;
  r += "Connection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

}  // namespace

PrometheusServer::PrometheusServer(PrometheusConfig cfg, Collector collector)
    : cfg_(std::move(cfg)), collector_(std::move(collector)) {}

PrometheusServer::~PrometheusServer() { stop(); }

namespace {
// Numeric host and port only: a listen address never waits on DNS.
int resolve_listen(const std::string& address, const std::string& port, addrinfo** res) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  return ::getaddrinfo(address.c_str(), port.c_str(), &hints, res);
}
}  // namespace

std::string listen_address_problem(const std::string& address) {
  addrinfo* res = nullptr;
  const int gai = resolve_listen(address, "0", &res);
  if (res) ::freeaddrinfo(res);
  return gai == 0 ? std::string() : gai_strerror(gai);
}

void PrometheusServer::start() {
  if (!cfg_.enabled || running_) return;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(cfg_.port);
  const int gai = resolve_listen(cfg_.address, port, &res);
  if (gai != 0 || !res)
    throw std::runtime_error("prometheus: bad listen address '" + cfg_.address +
                             "' (a numeric IPv4/IPv6 address): " + gai_strerror(gai));
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    throw std::runtime_error(std::string("prometheus: socket(): ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
    const int e = errno;
    ::freeaddrinfo(res);
    ::close(fd);
    throw std::runtime_error("prometheus: cannot listen on " + cfg_.address + ":" + port + ": " +
                             std::strerror(e));
  }
  ::freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  bound_port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    ::close(fd);
    throw std::runtime_error(std::string("prometheus: eventfd(): ") + std::strerror(errno));
  }
  listen_fd_ = fd;
  stop_ = false;
  running_ = true;
  thread_ = std::thread([this] { run(); });
  spdlog::info("prometheus metrics on http://{}:{}/metrics", cfg_.address, bound_port_);
}

void PrometheusServer::stop() {
  if (!running_) return;
  stop_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  running_ = false;
}

std::string PrometheusServer::respond(const std::string& request) {
  const size_t eol = request.find_first_of("\r\n");
  const std::string line = request.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos)
    return http_reply(400, "Bad Request", "text/plain", "bad request line\n", false);
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string version = line.substr(sp2 + 1);
  if (version.rfind("HTTP/1.", 0) != 0)
    return http_reply(400, "Bad Request", "text/plain", "HTTP/1.0 or HTTP/1.1 only\n", false);
  const bool head = method == "HEAD";
  if (method != "GET" && !head)
    return http_reply(405, "Method Not Allowed", "text/plain", "GET or HEAD only\n", false,
                      "Allow: GET, HEAD\r\n");
  target = target.substr(0, target.find('?'));
  if (target != "/metrics")
    return http_reply(404, "Not Found", "text/plain", "metrics are at /metrics\n", head);
  try {
    std::string body = render_prometheus(collector_ ? collector_() : std::vector<Metric>{});
    ++scrapes_;
    return http_reply(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, head);
  } catch (const std::exception& e) {
    spdlog::warn("prometheus: collecting metrics failed: {}", e.what());
    return http_reply(500, "Internal Server Error", "text/plain",
                      std::string("collecting metrics failed: ") + e.what() + "\n", head);
  }
}

void PrometheusServer::run() {
  using Clock = std::chrono::steady_clock;
  std::list<HttpClient> clients;
  std::vector<pollfd> pfds;
  std::vector<HttpClient*> order;
  char buf[4096];
  while (!stop_) {
    pfds.clear();
    order.clear();
    pfds.push_back({wake_fd_, POLLIN, 0});
    pfds.push_back({listen_fd_, POLLIN, 0});
    auto now = Clock::now();
    auto next = now + std::chrono::hours(1);
    for (HttpClient& c : clients) {
      pfds.push_back({c.fd, static_cast<short>(c.responded && !c.draining ? POLLOUT : POLLIN), 0});
      order.push_back(&c);
      next = std::min(next, c.deadline);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    if (::poll(pfds.data(), pfds.size(), static_cast<int>(std::max<int64_t>(0, wait))) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("prometheus: poll(): {}", std::strerror(errno));
      break;
    }
    if (stop_) break;
    if (pfds[1].revents & POLLIN) {
      for (;;) {
        const int cfd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        if (static_cast<int>(clients.size()) >= cfg_.max_clients) {
          const std::string r = http_reply(503, "Service Unavailable", "text/plain", "busy\n", false);
          (void)::send(cfd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          ::close(cfd);
          continue;
        }
        HttpClient c;
        c.fd = cfd;
        c.deadline = Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms);
        clients.push_back(std::move(c));
      }
    }
    for (size_t i = 0; i < order.size(); ++i) {
      HttpClient& c = *order[i];
      const short re = pfds[i + 2].revents;
      if (re == 0) continue;
      if (c.draining) {
        // Lingering close: read and discard until the peer closes, so closing with unread
        // bytes does not reset the connection and destroy the reply in flight.
        ssize_t r;
        while ((r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {}
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) c.deadline = Clock::now();
        continue;
      }
      if (!c.responded) {
        bool eof = false;
        for (;;) {
          const ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
          if (r > 0) {
            c.in.append(buf, static_cast<size_t>(r));
            if (c.in.size() > cfg_.max_request_bytes) break;
          } else {
            eof = r == 0 || (errno != EAGAIN && errno != EINTR);
            break;
          }
        }
        const bool complete = c.in.find("\r\n\r\n") != std::string::npos ||
                              c.in.find("\n\n") != std::string::npos;
        if (complete) {
          c.out = respond(c.in);
        } else if (c.in.size() > cfg_.max_request_bytes) {
          c.out = http_reply(431, "Request Header Fields Too Large", "text/plain",
                             "request larger than " + std::to_string(cfg_.max_request_bytes) + " bytes\n", false);
        } else if (eof) {
          c.deadline = Clock::now();  // closed before a full request: drop below
          continue;
        } else {
          continue;
        }
        c.responded = true;
        c.deadline = Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms);
      }
      if (c.off < c.out.size()) {
        const ssize_t w = ::send(c.fd, c.out.data() + c.off, c.out.size() - c.off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) c.off += static_cast<size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR) c.deadline = Clock::now();
      }
      if (c.off >= c.out.size()) {
        ::shutdown(c.fd, SHUT_WR);
        c.draining = true;
        c.deadline = std::min(c.deadline, Clock::now() + std::chrono::milliseconds(500));
      }
    }
    now = Clock::now();
    for (auto it = clients.begin(); it != clients.end();) {
      if (now >= it->deadline) {
        ::close(it->fd);
        it = clients.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (HttpClient& c : clients) ::close(c.fd);
}

}  // namespace flowpic
