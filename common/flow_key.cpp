#include "common/flow_key.hpp"

#include <arpa/inet.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/window.hpp"

namespace flowpic {

namespace {

// A fresh seed per process (getrandom), so nobody can precompute keys that collide in a
// table's index; the time and address only if the kernel has no entropy call.
uint64_t initial_seed() noexcept {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof s))
    s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        reinterpret_cast<uintptr_t>(&s);
  return s;
}

std::atomic<uint64_t> g_seed{initial_seed()};

}  // namespace

uint64_t flow_hash_seed() noexcept { return g_seed.load(std::memory_order_relaxed); }
void set_flow_hash_seed(uint64_t seed) noexcept { g_seed.store(seed, std::memory_order_relaxed); }

uint64_t flow_hash(const FlowKey& k) noexcept {
  return XXH3_64bits_withSeed(&k, sizeof(k), g_seed.load(std::memory_order_relaxed));
}

const char* proto_name(uint8_t proto) noexcept {
  switch (proto) {
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 47: return "gre";
    case 50: return "esp";
    case 58: return "icmp6";
    case 132: return "sctp";
    default: return nullptr;
  }
}

std::string address_string(const FlowKey& k, bool source) {
  char buf[INET6_ADDRSTRLEN];
  const uint8_t* a = source ? k.src : k.dst;
  inet_ntop(k.family == 6 ? AF_INET6 : AF_INET, a, buf, sizeof(buf));
  return buf;
}

static bool has_ports(const FlowKey& k) {
  return !(k.flags & FlowKey::kFlagFragment) && (k.proto == 6 || k.proto == 17 || k.proto == 132);
}

static std::string endpoint(const FlowKey& k, bool source) {
  std::string a = address_string(k, source);
  if (!has_ports(k)) return a;
  if (k.family == 6) a = "[" + a + "]";
  return a + ":" + std::to_string(source ? k.sport : k.dport);
}

std::string to_string(const FlowKey& k) {
  const char* p = proto_name(k.proto);
  std::string s = p ? p : "proto-" + std::to_string(k.proto);
  s += " " + endpoint(k, true) + " -> " + endpoint(k, false);
  if (k.flags & FlowKey::kFlagFragment) s += " frag";
  return s;
}

namespace {

bool fail(std::string* err, std::string msg) {
  if (err) *err = std::move(msg);
  return false;
}

// "1.2.3.4", "1.2.3.4:80", "[::1]:80", "::1" (no port) into addr/port.
bool parse_endpoint(std::string_view t, bool want_port, uint8_t family_hint, uint8_t* addr,
                    uint8_t& family, uint16_t& port, std::string* err) {
  std::string host;
  std::string_view port_text;
  if (!t.empty() && t.front() == '[') {
    auto close = t.find(']');
    if (close == std::string_view::npos) return fail(err, "missing ']' in '" + std::string(t) + "'");
    host = std::string(t.substr(1, close - 1));
    std::string_view rest = t.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(err, "expected ':port' after ']'");
      port_text = rest.substr(1);
    }
  } else if (std::count(t.begin(), t.end(), ':') == 1) {
    auto colon = t.find(':');
    host = std::string(t.substr(0, colon));
    port_text = t.substr(colon + 1);
  } else {
    host = std::string(t);
  }
  std::memset(addr, 0, 16);
  if (inet_pton(AF_INET, host.c_str(), addr) == 1) {
    family = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    family = 6;
  } else {
    return fail(err, "'" + host + "' is not an IPv4 or IPv6 address");
  }
  if (family_hint && family != family_hint) return fail(err, "source and destination families differ");
  port = 0;
  if (want_port) {
    if (port_text.empty()) return fail(err, "missing port in '" + std::string(t) + "'");
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || v > 65535)
      return fail(err, "bad port '" + std::string(port_text) + "'");
    port = static_cast<uint16_t>(v);
  } else if (!port_text.empty()) {
    return fail(err, "this protocol has no ports");
  }
  return true;
}

}  // namespace

bool parse_flow_key(std::string_view text, FlowKey& out, std::string* err) {
  std::memset(&out, 0, sizeof(out));
  auto sp = text.find(' ');
  if (sp == std::string_view::npos) return fail(err, "expected 'PROTO SRC -> DST'");
  std::string_view proto = text.substr(0, sp);
  std::string_view rest = text.substr(sp + 1);
  unsigned pnum = 256;
  for (unsigned p = 0; p < 256; ++p) {
    const char* n = proto_name(static_cast<uint8_t>(p));
    if (n && proto == n) { pnum = p; break; }
  }
  if (pnum == 256) {
    std::string_view num = proto.substr(0, 6) == "proto-" ? proto.substr(6) : proto;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec != std::errc() || p != num.data() + num.size() || v > 255)
      return fail(err, "unknown protocol '" + std::string(proto) + "'");
    pnum = v;
  }
  out.proto = static_cast<uint8_t>(pnum);
  constexpr std::string_view frag = " frag";
  if (rest.size() > frag.size() && rest.substr(rest.size() - frag.size()) == frag) {
    out.flags = FlowKey::kFlagFragment;
    rest = rest.substr(0, rest.size() - frag.size());
  }
  auto arrow = rest.find(" -> ");
  if (arrow == std::string_view::npos) return fail(err, "expected 'SRC -> DST'");
  bool ports = has_ports(out);
  uint8_t fam = 0, fam2 = 0;
  if (!parse_endpoint(rest.substr(0, arrow), ports, 0, out.src, fam, out.sport, err)) return false;
  if (!parse_endpoint(rest.substr(arrow + 4), ports, fam, out.dst, fam2, out.dport, err)) return false;
  out.family = fam;
  return true;
}

const char* close_reason_name(CloseReason r) noexcept {
  switch (r) {
    case CloseReason::kCount: return "count";
    case CloseReason::kTime: return "time";
    case CloseReason::kIdle: return "idle";
    case CloseReason::kFlush: return "flush";
    case CloseReason::kEvict: return "evict";
  }
  return "unknown";
}

}  // namespace flowpic
