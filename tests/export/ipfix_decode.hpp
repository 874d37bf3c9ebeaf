// A small IPFIX (RFC 7011) decoder for the tests: messages, sets, templates and options
// templates read from the wire, data records decoded with the templates received (variable-
// length fields included). Independent of export/ipfix.cpp: it reads what the collector reads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ipfix_test {

inline uint16_t g16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t g32(const uint8_t* p) { return uint32_t(g16(p)) << 16 | g16(p + 2); }
inline uint64_t g64(const uint8_t* p) { return uint64_t(g32(p)) << 32 | g32(p + 4); }

struct Field {
  uint16_t id, len;
  uint32_t pen;
};
struct Record {
  uint16_t tmpl = 0;
  std::map<uint32_t, std::vector<uint8_t>> v;  // (pen << 16 | id) -> bytes
  const std::vector<uint8_t>& at(uint16_t id, uint32_t pen = 0) const { return v.at(pen << 16 | id); }
  uint64_t num(uint16_t id, uint32_t pen = 0) const {
    uint64_t x = 0;
    for (uint8_t b : at(id, pen)) x = x << 8 | b;
    return x;
  }
};
struct Message {
  uint16_t length = 0;
  uint32_t export_time = 0, seq = 0, domain = 0;
  bool templates = false, options_template = false;
  std::vector<Record> flows, options;
  bool ok = true;
  std::string error;
};

class Decoder {
 public:
  // One message at p (n bytes available); *used = its length.
  Message decode(const uint8_t* p, std::size_t n, std::size_t* used = nullptr) {
    Message m;
    if (n < 16 || g16(p) != 10) return fail(m, "not an IPFIX message");
    m.length = g16(p + 2);
    if (m.length < 16 || m.length > n) return fail(m, "bad length");
    if (used) *used = m.length;
    m.export_time = g32(p + 4);
    m.seq = g32(p + 8);
    m.domain = g32(p + 12);
    std::size_t at = 16;
    while (at + 4 <= m.length) {
      const uint16_t id = g16(p + at), len = g16(p + at + 2);
      if (len < 4 || at + len > m.length) return fail(m, "bad set length");
      const uint8_t* s = p + at + 4;
      const uint8_t* e = p + at + len;
      if (id == 2 || id == 3) {
        (id == 2 ? m.templates : m.options_template) = true;
        while (s + 4 <= e) {
          const uint16_t tid = g16(s), count = g16(s + 2);
          s += id == 3 ? 6 : 4;
          std::vector<Field> f;
          for (uint16_t i = 0; i < count; ++i) {
            Field x{static_cast<uint16_t>(g16(s) & 0x7fff), g16(s + 2), 0};
            const bool ent = g16(s) & 0x8000;
            s += 4;
            if (ent) {
              x.pen = g32(s);
              s += 4;
            }
            f.push_back(x);
          }
          templates_[tid] = f;
        }
      } else if (id >= 256) {
        auto t = templates_.find(id);
        if (t == templates_.end()) {
          ++unknown_sets;
        } else {
          while (s < e) {
            Record r;
            r.tmpl = id;
            for (const Field& f : t->second) {
              std::size_t l = f.len;
              if (l == 0xffff) {
                l = *s++;
                if (l == 255) {
                  l = g16(s);
                  s += 2;
                }
              }
              if (s + l > e) return fail(m, "record past its set");
              r.v[f.pen << 16 | f.id] = std::vector<uint8_t>(s, s + l);
              s += l;
            }
            (id == 258 ? m.options : m.flows).push_back(std::move(r));
          }
        }
      }
      at += len;
    }
    return m;
  }
  bool knows(uint16_t tid) const { return templates_.count(tid) > 0; }
  void forget() { templates_.clear(); }
  uint64_t unknown_sets = 0;

 private:
  static Message fail(Message& m, const char* why) {
    m.ok = false;
    m.error = why;
    return m;
  }
  std::map<uint16_t, std::vector<Field>> templates_;
};

}  // namespace ipfix_test
