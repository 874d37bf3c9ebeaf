#include "export/exporter.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace flowpic {

using Clock = std::chrono::steady_clock;

std::string parse_collector(const std::string& s, std::string* host, uint16_t* port) {
  std::string h, p;
  if (!s.empty() && s[0] == '[') {
    const auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return "expected [IPV6]:PORT, got '" + s + "'";
    h = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || s.find(':') != colon)
      return "expected HOST:PORT (or [IPV6]:PORT), got '" + s + "'";
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return "port must be a number 1-65535, got '" + p + "'";
  const unsigned long v = std::stoul(p);
  if (v < 1 || v > 65535) return "port must be 1-65535, got " + p;
  *host = h;
  *port = static_cast<uint16_t>(v);
  return {};
}

std::string ExportConfig::validate() const {
  if (host.empty()) return "collector: the host is empty (e.g. collector: 127.0.0.1:4739)";
  if (!(template_refresh_s > 0) || template_refresh_s > 86400)
    return "template_refresh: must be 0 < s <= 86400 (e.g. 60)";
  if (!(active_timeout_s > 0) || active_timeout_s > 86400) return "active_timeout: must be 0 < s <= 86400 (e.g. 60)";
  if (!(idle_timeout_s >= 0) || idle_timeout_s > 86400) return "idle_timeout: must be 0 <= s <= 86400 (0: flow_table.idle_timeout_s)";
  if (mtu < 576 || mtu > 65535) return "mtu: must be 576-65535 (e.g. 1500)";
  if (ring_size < 64 || (ring_size & (ring_size - 1)) != 0 || ring_size > (1u << 24))
    return "ring_size: must be a power of two 64-16777216 (e.g. 16384)";
  if (buffer_records > (1u << 26)) return "buffer_records: must be <= 67108864";
  if (!(verdict_wait_s >= 0) || verdict_wait_s > 3600) return "verdict_wait: must be 0-3600 s (e.g. 5)";
  return {};
}

// ---- ring ----

ExportRing::ExportRing(uint32_t size) : buf_(size), mask_(size - 1) {}

bool ExportRing::push(const FlowExportMsg& m) noexcept {
  const uint32_t h = head_.load(std::memory_order_relaxed);
  if (h - cached_tail_ > mask_) {
    cached_tail_ = tail_.load(std::memory_order_acquire);
    if (h - cached_tail_ > mask_) return false;
  }
  buf_[h & mask_] = m;
  head_.store(h + 1, std::memory_order_release);
  return true;
}

uint32_t ExportRing::pop(FlowExportMsg* out, uint32_t max) noexcept {
  const uint32_t t = tail_.load(std::memory_order_relaxed);
  const uint32_t h = head_.load(std::memory_order_acquire);
  uint32_t n = h - t;
  if (n > max) n = max;
  for (uint32_t i = 0; i < n; ++i) out[i] = buf_[(t + i) & mask_];
  tail_.store(t + n, std::memory_order_release);
  return n;
}

bool ExportRing::empty() const noexcept {
  return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
}

// ---- exporter ----

namespace {
std::size_t message_limit(const ExportConfig& c, int family) {
  const std::size_t ip = family == AF_INET6 ? 40 : 20;
  const std::size_t l4 = c.transport == ExportConfig::Transport::kUdp ? 8 : 20;
  return c.mtu - ip - l4;
}
}  // namespace

IpfixExporter::IpfixExporter(const ExportConfig& cfg, uint32_t producers)
    : cfg_(cfg), mb_(cfg.observation_domain, ipfix::kMinMessage) {
  const std::string err = cfg.validate();
  if (!err.empty()) throw std::runtime_error("ipfix exporter: " + err);
  for (uint32_t i = 0; i < producers; ++i) rings_.push_back(std::make_unique<ExportRing>(cfg.ring_size));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = cfg.transport == ExportConfig::Transport::kUdp ? SOCK_DGRAM : SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(cfg.host.c_str(), std::to_string(cfg.port).c_str(), &hints, &res);
  if (rc != 0 || !res)
    throw std::runtime_error("ipfix exporter: collector " + cfg.host + ":" + std::to_string(cfg.port) +
                             ": cannot resolve the host (" + gai_strerror(rc) + "): give an address or a resolvable name");
  family_ = res->ai_family;
  addr_.assign(reinterpret_cast<uint8_t*>(res->ai_addr), reinterpret_cast<uint8_t*>(res->ai_addr) + res->ai_addrlen);
  freeaddrinfo(res);
  mb_ = ipfix::MessageBuilder(cfg.observation_domain, message_limit(cfg, family_));
  cur_.resize(mb_.max_message());
  if (cfg.transport == ExportConfig::Transport::kUdp) {
    fd_ = socket(family_, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("ipfix exporter: cannot open a UDP socket: ") + std::strerror(errno));
    int sz = 4 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(addr_.data()), static_cast<socklen_t>(addr_.size())) != 0) {
      const std::string e = std::strerror(errno);
      close(fd_);
      fd_ = -1;
      throw std::runtime_error("ipfix exporter: collector " + collector() + ": " + e);
    }
    st_.connected = 1;
  }
}

IpfixExporter::~IpfixExporter() {
  if (thread_.joinable()) finish();
  if (fd_ >= 0) close(fd_);
}

std::string IpfixExporter::collector() const {
  const bool v6 = cfg_.host.find(':') != std::string::npos;
  return std::string(cfg_.transport == ExportConfig::Transport::kUdp ? "udp " : "tcp ") + (v6 ? "[" : "") + cfg_.host +
         (v6 ? "]" : "") + ":" + std::to_string(cfg_.port);
}

void IpfixExporter::push_wait(uint32_t producer, const FlowExportMsg& m) noexcept {
  while (!rings_[producer]->push(m)) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

void IpfixExporter::publish(uint32_t model_tag, const std::string& model_id, const std::vector<std::string>& names) {
  std::lock_guard lk(pub_mu_);
  pub_models_[model_tag] = model_id;
  if (names != pub_names_) {
    pub_names_ = names;
    ++pub_version_;
  }
}

void IpfixExporter::start() {
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
}

void IpfixExporter::finish() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

ExportStats IpfixExporter::stats() const {
  std::lock_guard lk(stats_mu_);
  return st_;
}

void IpfixExporter::run() {
  std::vector<FlowExportMsg> batch(256);
  begin_message();
  auto last_housekeeping = Clock::now();
  for (;;) {
    const bool stopping = stop_.load(std::memory_order_acquire);
    {
      std::lock_guard lk(pub_mu_);
      if (pub_version_ != seen_version_) {
        seen_version_ = pub_version_;
        names_ = pub_names_;
        need_control_ = true;  // the classes changed: their names go out before the next records
      }
      if (models_.size() != pub_models_.size()) models_ = pub_models_;
    }
    uint32_t got = 0;
    for (uint32_t p = 0; p < rings_.size(); ++p) {
      const uint32_t n = rings_[p]->pop(batch.data(), static_cast<uint32_t>(batch.size()));
      for (uint32_t i = 0; i < n; ++i) handle(p, batch[i]);
      got += n;
    }
    const auto now = Clock::now();
    if (got == 0 || now - last_housekeeping > std::chrono::milliseconds(50)) {
      last_housekeeping = now;
      expire_pending(false);
      if (cfg_.transport == ExportConfig::Transport::kUdp &&
          now - last_control_ > std::chrono::duration<double>(cfg_.template_refresh_s))
        need_control_ = true;
      if (cfg_.transport == ExportConfig::Transport::kTcp && fd_ < 0) tcp_connect();
      // A partial message leaves after 100 ms.
      if (!mb_.empty() && now - cur_since_ > std::chrono::milliseconds(100)) seal_message();
      if (need_control_ && (cfg_.transport == ExportConfig::Transport::kUdp || fd_ >= 0)) send_control();
      if (!backlog_.empty() && fd_ >= 0) flush_backlog();
    }
    if (got == 0) {
      if (stopping) {
        bool empty = true;
        for (auto& r : rings_) empty = empty && r->empty();
        if (empty) break;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  expire_pending(true);
  if (!mb_.empty()) seal_message();
  if (cfg_.transport == ExportConfig::Transport::kTcp) {
    // Last chance for what waited: a few connection attempts, then what is left is dropped, counted.
    for (int i = 0; i < 20 && !backlog_.empty(); ++i) {
      if (fd_ < 0 && !tcp_connect()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (fd_ >= 0) flush_backlog();
    }
    {
      std::lock_guard lk(stats_mu_);
      st_.records_dropped_buffer += backlog_flows_;
      st_.records_buffered = 0;
    }
    backlog_.clear();
    backlog_flows_ = 0;
    tcp_close();
  }
}

void IpfixExporter::handle(uint32_t producer, const FlowExportMsg& m) {
  const PKey key{producer, m.slot, m.gen};
  if (m.kind == FlowExportMsg::kLateVerdict) {
    auto it = pending_.find(key);
    {
      std::lock_guard lk(stats_mu_);
      ++st_.late_verdicts;
    }
    if (it == pending_.end()) return;
    FlowExportMsg& f = it->second.msg;
    f.cls = m.cls;
    f.confidence = m.confidence;
    f.model_tag = m.model_tag;
    if (f.pending > 0) --f.pending;
    if (f.pending == 0) {
      encode(f);
      pending_.erase(it);
    }
    return;
  }
  {
    std::lock_guard lk(stats_mu_);
    ++st_.received;
  }
  if (m.pending == 0 || cfg_.verdict_wait_s <= 0) {
    encode(m);
    return;
  }
  Pending p{m, Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg_.verdict_wait_s))};
  auto [it, fresh] = pending_.try_emplace(key, p);
  if (!fresh) {  // the same slot and generation twice (an active-timeout update still waiting): send the older
    encode(it->second.msg);
    it->second = p;
  }
}

void IpfixExporter::expire_pending(bool all) {
  if (pending_.empty()) return;
  const auto now = Clock::now();
  uint64_t timeouts = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (all || it->second.deadline <= now) {
      encode(it->second.msg);
      ++timeouts;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  std::lock_guard lk(stats_mu_);
  st_.verdict_timeouts += timeouts;
}

void IpfixExporter::begin_message() {
  mb_.begin(cur_.data(), 0, 0);  // export time and sequence are stamped at send
  cur_since_ = Clock::now();
}

void IpfixExporter::encode(const FlowExportMsg& m) {
  if (need_control_ && (cfg_.transport == ExportConfig::Transport::kUdp || fd_ >= 0)) send_control();
  ipfix::Flow f;
  f.key = m.key;
  f.start_ms = m.start_ns / 1000000;
  f.end_ms = m.end_ns / 1000000;
  f.packets = m.packets;
  f.bytes = m.bytes;
  f.ingress = m.ingress;
  f.reason = static_cast<ipfix::EndReason>(m.reason);
  f.app = m.cls >= 0 && static_cast<std::size_t>(m.cls) < names_.size() ? ipfix::selector_of(m.cls) : ipfix::kUnclassified;
  f.confidence = m.cls >= 0 ? m.confidence : 0.f;
  if (m.cls >= 0) {
    auto it = models_.find(m.model_tag);
    if (it != models_.end()) f.model = it->second;
  }
  if (!mb_.add_flow(f)) {
    seal_message();
    begin_message();
    mb_.add_flow(f);
  }
  if (mb_.flow_records() == 1) cur_since_ = Clock::now();
}

void IpfixExporter::seal_message() {
  if (mb_.empty()) return;
  const std::size_t n = mb_.finish();
  std::vector<uint8_t> msg(cur_.begin(), cur_.begin() + static_cast<std::ptrdiff_t>(n));
  const uint32_t records = mb_.data_records(), flows = mb_.flow_records();
  begin_message();
  if (!transmit(msg, records, flows)) {
    // TCP without a connection: keep it, up to the bound.
    if (backlog_flows_ + flows > cfg_.buffer_records) {
      std::lock_guard lk(stats_mu_);
      st_.records_dropped_buffer += flows;
      return;
    }
    backlog_.push_back(Queued{std::move(msg), records, flows});
    backlog_flows_ += flows;
    std::lock_guard lk(stats_mu_);
    st_.records_buffered = backlog_flows_;
  }
}

void IpfixExporter::send_control() {
  // Templates, then the class names, as messages of their own (the open flow message waits).
  // A failed TCP send sets need_control_ again (the next connection starts with them).
  need_control_ = false;
  std::vector<uint8_t> buf(mb_.max_message());
  ipfix::MessageBuilder cb(cfg_.observation_domain, mb_.max_message());
  cb.begin(buf.data(), 0, 0);
  cb.add_templates();
  auto send_it = [&] {
    const std::size_t n = cb.finish();
    std::vector<uint8_t> msg(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    transmit(msg, cb.data_records(), 0);
  };
  std::vector<std::string> names = names_;
  names.insert(names.begin(), "unclassified");  // selector 0
  for (std::size_t i = 0; i < names.size() && i <= ipfix::kMaxSelector; ++i) {
    const std::string desc = i == 0 ? "flowpic: no verdict for this flow" : "flowpic class " + names[i];
    const ipfix::AppName a{static_cast<uint16_t>(i), names[i], desc};
    if (!cb.add_app_name(a)) {
      send_it();
      cb.begin(buf.data(), 0, 0);
      cb.add_app_name(a);
    }
  }
  send_it();
  last_control_ = Clock::now();
  std::lock_guard lk(stats_mu_);
  ++st_.template_sends;
}

bool IpfixExporter::transmit(std::vector<uint8_t>& msg, uint32_t records, uint32_t flows) {
  if (fd_ < 0) return false;
  const uint32_t t = static_cast<uint32_t>(std::time(nullptr));
  msg[4] = static_cast<uint8_t>(t >> 24);
  msg[5] = static_cast<uint8_t>(t >> 16);
  msg[6] = static_cast<uint8_t>(t >> 8);
  msg[7] = static_cast<uint8_t>(t);
  msg[8] = static_cast<uint8_t>(sequence_ >> 24);
  msg[9] = static_cast<uint8_t>(sequence_ >> 16);
  msg[10] = static_cast<uint8_t>(sequence_ >> 8);
  msg[11] = static_cast<uint8_t>(sequence_);
  if (cfg_.transport == ExportConfig::Transport::kUdp) {
    const ssize_t w = send(fd_, msg.data(), msg.size(), 0);
    sequence_ += records;  // sent or lost on the way: the collector sees a gap either way
    std::lock_guard lk(stats_mu_);
    if (w == static_cast<ssize_t>(msg.size())) {
      ++st_.messages;
      st_.bytes += msg.size();
      st_.flow_records += flows;
      st_.options_records += records - flows;
    } else {
      ++st_.send_errors;
      st_.records_lost_send += flows;
    }
    return true;  // UDP never keeps a message
  }
  std::size_t off = 0;
  while (off < msg.size()) {
    const ssize_t w = send(fd_, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd_, POLLOUT, 0};
        if (poll(&p, 1, 1000) > 0) continue;
      }
      {
        std::lock_guard lk(stats_mu_);
        ++st_.send_errors;
      }
      tcp_close();
      need_control_ = true;  // a new connection starts with the templates
      return false;          // the caller keeps the whole message
    }
    off += static_cast<std::size_t>(w);
  }
  sequence_ += records;
  std::lock_guard lk(stats_mu_);
  ++st_.messages;
  st_.bytes += msg.size();
  st_.flow_records += flows;
  st_.options_records += records - flows;
  return true;
}

void IpfixExporter::flush_backlog() {
  while (!backlog_.empty() && fd_ >= 0) {
    if (need_control_) send_control();
    if (fd_ < 0) return;
    Queued& q = backlog_.front();
    if (!transmit(q.bytes, q.records, q.flows)) return;
    backlog_flows_ -= q.flows;
    backlog_.pop_front();
  }
  std::lock_guard lk(stats_mu_);
  st_.records_buffered = backlog_flows_;
}

bool IpfixExporter::tcp_connect() {
  const auto now = Clock::now();
  if (now < next_connect_) return false;
  const int fd = socket(family_, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(addr_.data()), static_cast<socklen_t>(addr_.size()));
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 200) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
    } else {
      rc = -1;
    }
  }
  if (rc != 0) {
    close(fd);
    next_connect_ = now + backoff_;  // 0.1 s doubling to 5 s
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
    return false;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_ = fd;
  backoff_ = std::chrono::milliseconds(100);
  need_control_ = true;
  std::lock_guard lk(stats_mu_);
  if (ever_connected_) ++st_.reconnects;
  ever_connected_ = true;
  st_.connected = 1;
  return true;
}

void IpfixExporter::tcp_close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  std::lock_guard lk(stats_mu_);
  st_.connected = 0;
}

}  // namespace flowpic
