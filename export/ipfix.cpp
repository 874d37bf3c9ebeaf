#include "export/ipfix.hpp"

#include <algorithm>
#include <cstring>

namespace flowpic::ipfix {

namespace {

inline void put8(uint8_t* p, uint8_t v) noexcept { p[0] = v; }
inline void put16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put32(uint8_t* p, uint32_t v) noexcept {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
inline void put64(uint8_t* p, uint64_t v) noexcept {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}

struct Field {
  uint16_t id;
  uint16_t len;
  uint32_t pen;  // 0: IANA
};
constexpr uint16_t kVarLen = 0xffff;

constexpr Field kFlowV4[] = {{8, 4, 0},    {12, 4, 0},  {7, 2, 0},  {11, 2, 0}, {4, 1, 0},
                             {1, 8, 0},    {2, 8, 0},   {152, 8, 0}, {153, 8, 0}, {10, 4, 0},
                             {136, 1, 0},  {95, 3, 0},  {kIeConfidence, 4, kPen}, {kIeModelId, kVarLen, kPen}};
constexpr Field kFlowV6[] = {{27, 16, 0},  {28, 16, 0}, {7, 2, 0},  {11, 2, 0}, {4, 1, 0},
                             {1, 8, 0},    {2, 8, 0},   {152, 8, 0}, {153, 8, 0}, {10, 4, 0},
                             {136, 1, 0},  {95, 3, 0},  {kIeConfidence, 4, kPen}, {kIeModelId, kVarLen, kPen}};
// Fixed-length names: nfdump 1.7 reads NBAR options only with fixed-length fields (as Cisco
// sends them); shorter strings are padded with NUL bytes, longer ones cut.
constexpr Field kOptions[] = {{149, 4, 0}, {95, 3, 0}, {96, kAppNameBytes, 0}, {94, kAppDescriptionBytes, 0}};
constexpr uint16_t kOptionsScopeFields = 1;

constexpr std::size_t fields_bytes(const Field* f, std::size_t n) {
  std::size_t b = 0;
  for (std::size_t i = 0; i < n; ++i) b += f[i].pen ? 8 : 4;
  return b;
}
constexpr std::size_t kTemplateSetBytes =
    4 + (4 + fields_bytes(kFlowV4, std::size(kFlowV4))) + (4 + fields_bytes(kFlowV6, std::size(kFlowV6)));
constexpr std::size_t kOptionsSetBytes = 4 + 6 + fields_bytes(kOptions, std::size(kOptions));
constexpr std::size_t kMaxString = 200;  // bytes of a variable-length string sent (one-byte length form)
// An empty message takes the templates, or any one options or flow record (and its set header).
static_assert(kHeaderBytes + kTemplateSetBytes + kOptionsSetBytes <= kMinMessage);
static_assert(kHeaderBytes + 4 + 4 + 3 + kAppNameBytes + kAppDescriptionBytes <= kMinMessage);
static_assert(kHeaderBytes + 4 + 81 + 1 + kMaxString <= kMinMessage);

std::size_t write_fields(uint8_t* p, const Field* f, std::size_t n) noexcept {
  uint8_t* s = p;
  for (std::size_t i = 0; i < n; ++i) {
    put16(p, static_cast<uint16_t>(f[i].id | (f[i].pen ? 0x8000 : 0)));
    put16(p + 2, f[i].len);
    p += 4;
    if (f[i].pen) {
      put32(p, f[i].pen);
      p += 4;
    }
  }
  return static_cast<std::size_t>(p - s);
}

inline std::size_t str_len(std::string_view s) noexcept { return std::min(s.size(), kMaxString); }
inline std::size_t put_str(uint8_t* p, std::string_view s) noexcept {
  const std::size_t n = str_len(s);
  p[0] = static_cast<uint8_t>(n);
  if (n) std::memcpy(p + 1, s.data(), n);
  return n + 1;
}

}  // namespace

MessageBuilder::MessageBuilder(uint32_t domain, std::size_t max_message) noexcept
    : domain_(domain), max_(std::max(max_message, kMinMessage)) {}

void MessageBuilder::begin(uint8_t* buf, uint32_t export_time_s, uint32_t sequence) noexcept {
  buf_ = buf;
  put16(buf, kVersion);
  put16(buf + 2, 0);  // length: finish()
  put32(buf + 4, export_time_s);
  put32(buf + 8, sequence);
  put32(buf + 12, domain_);
  at_ = kHeaderBytes;
  set_at_ = 0;
  set_id_ = 0;
  records_ = flows_ = 0;
}

void MessageBuilder::close_set() noexcept {
  if (set_at_ == 0) return;
  // Data sets need no padding: every record is written whole, the set ends where it ends.
  put16(buf_ + set_at_ + 2, static_cast<uint16_t>(at_ - set_at_));
  set_at_ = 0;
  set_id_ = 0;
}

bool MessageBuilder::open_set(uint16_t id, std::size_t need) noexcept {
  if (set_id_ == id && set_at_ != 0) return at_ + need <= max_;
  if (at_ + 4 + need > max_) return false;
  close_set();
  set_at_ = at_;
  set_id_ = id;
  put16(buf_ + at_, id);
  put16(buf_ + at_ + 2, 0);
  at_ += 4;
  return true;
}

bool MessageBuilder::add_templates() noexcept {
  if (at_ + kTemplateSetBytes + kOptionsSetBytes + (set_at_ ? 0 : 0) > max_) return false;
  close_set();
  uint8_t* p = buf_ + at_;
  put16(p, 2);  // template set
  put16(p + 2, static_cast<uint16_t>(kTemplateSetBytes));
  p += 4;
  put16(p, kTemplateV4);
  put16(p + 2, static_cast<uint16_t>(std::size(kFlowV4)));
  p += 4;
  p += write_fields(p, kFlowV4, std::size(kFlowV4));
  put16(p, kTemplateV6);
  put16(p + 2, static_cast<uint16_t>(std::size(kFlowV6)));
  p += 4;
  p += write_fields(p, kFlowV6, std::size(kFlowV6));
  put16(p, 3);  // options template set
  put16(p + 2, static_cast<uint16_t>(kOptionsSetBytes));
  p += 4;
  put16(p, kTemplateOptions);
  put16(p + 2, static_cast<uint16_t>(std::size(kOptions)));
  put16(p + 4, kOptionsScopeFields);
  p += 6;
  p += write_fields(p, kOptions, std::size(kOptions));
  at_ = static_cast<std::size_t>(p - buf_);
  return true;
}

bool MessageBuilder::add_app_name(const AppName& a) noexcept {
  const std::size_t need = 4 + 3 + kAppNameBytes + kAppDescriptionBytes;
  close_set();
  if (!open_set(kTemplateOptions, need)) return false;
  uint8_t* p = buf_ + at_;
  put32(p, domain_);
  app_id_bytes(a.app, p + 4);
  p += 7;
  std::memset(p, 0, kAppNameBytes + kAppDescriptionBytes);
  std::memcpy(p, a.name.data(), std::min(a.name.size(), kAppNameBytes));
  p += kAppNameBytes;
  std::memcpy(p, a.description.data(), std::min(a.description.size(), kAppDescriptionBytes));
  p += kAppDescriptionBytes;
  at_ = static_cast<std::size_t>(p - buf_);
  ++records_;
  // One record per set: nfdump 1.7.1 steps through an options set by the record size without
  // its scope fields, so it reads only a set's first record right.
  close_set();
  return true;
}

bool MessageBuilder::add_flow(const Flow& f) noexcept {
  const bool v6 = f.key.family == 6;
  const std::size_t addr = v6 ? 16 : 4;
  const std::size_t need = 2 * addr + 2 + 2 + 1 + 8 + 8 + 8 + 8 + 4 + 1 + 3 + 4 + 1 + str_len(f.model);
  if (!open_set(v6 ? kTemplateV6 : kTemplateV4, need)) return false;
  uint8_t* p = buf_ + at_;
  std::memcpy(p, f.key.src, addr);
  std::memcpy(p + addr, f.key.dst, addr);
  p += 2 * addr;
  put16(p, f.key.sport);
  put16(p + 2, f.key.dport);
  put8(p + 4, f.key.proto);
  put64(p + 5, f.bytes);
  put64(p + 13, f.packets);
  put64(p + 21, f.start_ms);
  put64(p + 29, f.end_ms);
  put32(p + 37, f.ingress);
  put8(p + 41, static_cast<uint8_t>(f.reason));
  app_id_bytes(f.app, p + 42);
  uint32_t conf;
  std::memcpy(&conf, &f.confidence, 4);
  put32(p + 45, conf);
  p += 49;
  p += put_str(p, f.model);
  at_ = static_cast<std::size_t>(p - buf_);
  ++records_;
  ++flows_;
  return true;
}

std::size_t MessageBuilder::finish() noexcept {
  close_set();
  put16(buf_ + 2, static_cast<uint16_t>(at_));
  return at_;
}

}  // namespace flowpic::ipfix
