#include "picbuilder/flowpic.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace flowpic {

namespace {

constexpr uint32_t kMinResolution = 8;
constexpr uint32_t kMaxResolution = 1500;
constexpr TimeNs kMaxWindowLengthNs = 24ULL * 3600ULL * kNsPerSec;
// Counts accumulate in float inside build_flowpic; integers are exact up to 2^24.
constexpr float kMaxClip = 16777216.f;
// Up to this many records, build_flowpic normalises only the touched pixels.
constexpr uint32_t kSparseRecords = 256;

// floor(num / den) for den > 0, using a double reciprocal and one integer correction
// step; exact while the quotient is small (it is compared with R <= 1500).
inline uint64_t floor_div(uint64_t num, uint64_t den, double inv_den) noexcept {
  uint64_t q = static_cast<uint64_t>(static_cast<double>(num) * inv_den);
  if (q * den > num) {
    --q;
  } else if ((q + 1) * den <= num) {
    ++q;
  }
  return q;
}

// Precomputed per-call constants that map a record to its pixel index.
struct Binner {
  TimeAxis axis;
  uint32_t r;
  uint32_t last;         // R - 1
  uint32_t size_den;     // max_size + 1
  double size_inv;
  uint32_t plane;        // R * R
  uint32_t two;          // 1 with two channels: a reverse record lands in the second plane
  // kSpan: x = floor((t_us * ts + off) * R / den); ts = 1000 for time windows (ns), 1 for count (us).
  uint64_t span_mult;
  uint64_t span_off;
  uint64_t span_den;     // 0: every record in column 0 (count window of span 0)
  double span_inv;
  // kFixed / kLog, in microseconds.
  double off_us;
  double horizon_us;
  double inv_tau_us;
  double log_scale;      // R / log1p(horizon / tau)

  uint32_t x_of(uint32_t t_us) const noexcept {
    uint64_t x = 0;
    switch (axis) {
      case TimeAxis::kSpan:
        if (span_den == 0) return 0;
        x = floor_div((static_cast<uint64_t>(t_us) * span_mult + span_off) * r, span_den, span_inv);
        break;
      case TimeAxis::kFixed: {
        const double v = (static_cast<double>(t_us) + off_us) * r / horizon_us;
        x = v >= static_cast<double>(last) ? last : static_cast<uint64_t>(v);
        break;
      }
      case TimeAxis::kLog: {
        const double v = std::log1p((static_cast<double>(t_us) + off_us) * inv_tau_us) * log_scale;
        x = v >= static_cast<double>(last) ? last : static_cast<uint64_t>(v);
        break;
      }
    }
    return x > last ? last : static_cast<uint32_t>(x);
  }
  uint32_t y_of(uint16_t size) const noexcept {
    const uint64_t y = floor_div(static_cast<uint64_t>(size) * r, size_den, size_inv);
    return y > last ? last : static_cast<uint32_t>(y);
  }
  uint32_t index(const PacketRecord& rec) const noexcept {
    return (rec.reverse & two) * plane + y_of(rec.size) * r + x_of(rec.t_us);
  }
};

inline uint32_t weight_of(const PacketRecord& rec) noexcept { return rec.weight ? rec.weight : 1u; }

Binner make_binner(const PictureConfig& cfg, const WindowInfo& info, const PacketRecord* recs,
                   uint32_t n) noexcept {
  Binner b{};
  b.axis = cfg.time_axis;
  b.r = cfg.resolution;
  b.last = cfg.resolution - 1;
  b.size_den = cfg.max_size + 1;
  b.size_inv = 1.0 / b.size_den;
  b.plane = cfg.resolution * cfg.resolution;
  b.two = cfg.channels == 2 ? 1u : 0u;

  const bool time_window = cfg.window.kind == WindowPolicy::Kind::kTime;
  uint64_t off_ns = 0;
  if (time_window && info.first_ns >= info.start_ns && info.first_ns - info.start_ns < cfg.window.length_ns) {
    off_ns = info.first_ns - info.start_ns;
  }
  b.off_us = static_cast<double>(off_ns) / 1e3;

  if (time_window) {
    b.span_mult = 1000;
    b.span_off = off_ns;
    b.span_den = cfg.window.length_ns;
  } else {
    uint32_t span = 0;
    for (uint32_t i = 0; i < n; ++i) span = std::max(span, recs[i].t_us);
    b.span_mult = 1;
    b.span_off = 0;
    b.span_den = span;
  }
  b.span_inv = b.span_den ? 1.0 / static_cast<double>(b.span_den) : 0.0;
  b.horizon_us = cfg.horizon_s * 1e6;
  b.inv_tau_us = 1.0 / (cfg.log_tau_s * 1e6);
  b.log_scale = static_cast<double>(b.r) / std::log1p(cfg.horizon_s / cfg.log_tau_s);
  return b;
}

// Config fields a hot path trusts; an unusable config yields an all-zero picture instead of
// out-of-range writes.
inline bool usable(const PictureConfig& cfg) noexcept {
  return cfg.resolution >= 1 && cfg.resolution <= kMaxResolution && cfg.max_size >= 1 &&
         cfg.horizon_s > 0 && cfg.log_tau_s > 0 && cfg.clip >= 1.f && (cfg.channels == 1 || cfg.channels == 2);
}

// Divisions (not multiplications by a reciprocal) so values are exactly c / clip and
// log1p(c) / log1p(clip), as documented; only touched pixels pay for them.
inline float normalise(float c, float clip, Normalisation norm, float log_clip) noexcept {
  const float v = c < clip ? c : clip;
  return norm == Normalisation::kClipScale ? v / clip : std::log1p(v) / log_clip;
}

}  // namespace

const char* time_axis_name(TimeAxis a) noexcept {
  switch (a) {
    case TimeAxis::kSpan: return "span";
    case TimeAxis::kFixed: return "fixed";
    case TimeAxis::kLog: return "log";
  }
  return "unknown";
}

const char* normalisation_name(Normalisation n) noexcept {
  switch (n) {
    case Normalisation::kClipScale: return "clip_scale";
    case Normalisation::kLog: return "log";
  }
  return "unknown";
}

bool time_axis_from_name(const std::string& s, TimeAxis& out) noexcept {
  for (TimeAxis a : {TimeAxis::kSpan, TimeAxis::kFixed, TimeAxis::kLog}) {
    if (s == time_axis_name(a)) {
      out = a;
      return true;
    }
  }
  return false;
}

bool normalisation_from_name(const std::string& s, Normalisation& out) noexcept {
  for (Normalisation n : {Normalisation::kClipScale, Normalisation::kLog}) {
    if (s == normalisation_name(n)) {
      out = n;
      return true;
    }
  }
  return false;
}

std::string PictureConfig::validate() const {
  if (resolution < kMinResolution || resolution > kMaxResolution)
    return "resolution must be in [8, 1500] (got " + std::to_string(resolution) + ")";
  if (max_size < 64 || max_size > 65535)
    return "max_size must be in [64, 65535] bytes (got " + std::to_string(max_size) + ")";
  if (time_axis != TimeAxis::kSpan && time_axis != TimeAxis::kFixed && time_axis != TimeAxis::kLog)
    return "time_axis must be span, fixed or log";
  if (norm != Normalisation::kClipScale && norm != Normalisation::kLog)
    return "norm must be clip_scale or log";
  if (!(horizon_s > 0) || !std::isfinite(horizon_s)) return "horizon_s must be a positive number of seconds";
  if (!(log_tau_s > 0) || !std::isfinite(log_tau_s)) return "log_tau_s must be a positive number of seconds";
  if (!(clip >= 1.f) || !(clip <= kMaxClip)) return "clip must be in [1, 16777216]";
  if (channels != 1 && channels != 2) return "channels must be 1 or 2 (got " + std::to_string(channels) + ")";
  if (channels == 2 && !window.bidirectional)
    return "two channels (one per direction) need bidirectional windows (window.flows: bi)";
  switch (window.kind) {
    case WindowPolicy::Kind::kTime:
      if (window.length_ns == 0 || window.length_ns > kMaxWindowLengthNs)
        return "window length must be in (0, 86400] seconds";
      break;
    case WindowPolicy::Kind::kCount:
      if (window.packets == 0) return "count windows need packets >= 1";
      if (window.min_packets > window.packets)
        return "window min_packets (" + std::to_string(window.min_packets) + ") exceeds packets per window (" +
               std::to_string(window.packets) + "): no window would ever qualify";
      break;
    default:
      return "window kind must be time or count";
  }
  return {};
}

bool PictureConfig::same_pictures(const PictureConfig& o) const noexcept {
  // min_packets and max_windows decide which windows get classified, not what they look like.
  if (window.kind != o.window.kind || resolution != o.resolution || max_size != o.max_size ||
      time_axis != o.time_axis || clip != o.clip || norm != o.norm || channels != o.channels ||
      window.bidirectional != o.window.bidirectional || window.min_ip_len != o.window.min_ip_len)
    return false;
  if (window.kind == WindowPolicy::Kind::kTime ? window.length_ns != o.window.length_ns
                                               : window.packets != o.window.packets)
    return false;
  // kSpan needs no horizon; only kLog uses tau.
  if ((time_axis == TimeAxis::kFixed || time_axis == TimeAxis::kLog) && horizon_s != o.horizon_s) return false;
  if (time_axis == TimeAxis::kLog && log_tau_s != o.log_tau_s) return false;
  return true;
}

void to_json(nlohmann::json& j, const PictureConfig& c) {
  j = nlohmann::json{
      {"window",
       {{"kind", c.window.kind == WindowPolicy::Kind::kTime ? "time" : "count"},
        {"length_s", static_cast<double>(c.window.length_ns) / 1e9},
        {"packets", c.window.packets},
        {"min_packets", c.window.min_packets},
        {"max_windows", c.window.max_windows},
        {"flows", c.window.bidirectional ? "bi" : "uni"}}},
      {"resolution", c.resolution},
      {"max_size", c.max_size},
      {"time_axis", time_axis_name(c.time_axis)},
      {"horizon_s", c.horizon_s},
      {"log_tau_s", c.log_tau_s},
      {"clip", c.clip},
      {"norm", normalisation_name(c.norm)},
      {"channels", c.channels},
  };
  if (c.window.min_ip_len) j["window"]["min_ip_len"] = c.window.min_ip_len;  // absent = 0
}

namespace {

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("picture config: " + what); }

const nlohmann::json& field(const nlohmann::json& j, const char* name, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end()) bad("missing field '" + where + name + "'");
  return *it;
}

uint32_t get_u32(const nlohmann::json& j, const char* name, const std::string& where = "") {
  const auto& v = field(j, name, where);
  if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
    bad("field '" + where + name + "' must be a non-negative integer (got " + v.dump() + ")");
  const uint64_t u = v.get<uint64_t>();
  if (u > std::numeric_limits<uint32_t>::max()) bad("field '" + where + name + "' is too large (" + v.dump() + ")");
  return static_cast<uint32_t>(u);
}

double get_num(const nlohmann::json& j, const char* name, const std::string& where = "") {
  const auto& v = field(j, name, where);
  if (!v.is_number()) bad("field '" + where + name + "' must be a number (got " + v.dump() + ")");
  const double d = v.get<double>();
  if (!std::isfinite(d)) bad("field '" + where + name + "' must be finite");
  return d;
}

std::string get_str(const nlohmann::json& j, const char* name, const std::string& where = "") {
  const auto& v = field(j, name, where);
  if (!v.is_string()) bad("field '" + where + name + "' must be a string (got " + v.dump() + ")");
  return v.get<std::string>();
}

}  // namespace

void from_json(const nlohmann::json& j, PictureConfig& out) {
  if (!j.is_object()) bad("expected a JSON object (got " + std::string(j.type_name()) + ")");
  PictureConfig c;
  const auto& w = field(j, "window", "");
  if (!w.is_object()) bad("field 'window' must be an object");
  const std::string kind = get_str(w, "kind", "window.");
  if (kind == "time") {
    c.window.kind = WindowPolicy::Kind::kTime;
  } else if (kind == "count") {
    c.window.kind = WindowPolicy::Kind::kCount;
  } else {
    bad("window.kind must be \"time\" or \"count\" (got \"" + kind + "\")");
  }
  const double length_s = get_num(w, "length_s", "window.");
  if (!(length_s > 0) || length_s > static_cast<double>(kMaxWindowLengthNs) / 1e9)
    bad("window.length_s must be in (0, 86400] (got " + std::to_string(length_s) + ")");
  c.window.length_ns = static_cast<TimeNs>(std::llround(length_s * 1e9));
  c.window.packets = get_u32(w, "packets", "window.");
  c.window.min_packets = get_u32(w, "min_packets", "window.");
  c.window.max_windows = get_u32(w, "max_windows", "window.");
  if (w.contains("flows")) {
    const std::string flows = get_str(w, "flows", "window.");
    if (flows != "uni" && flows != "bi") bad("window.flows must be \"uni\" or \"bi\" (got \"" + flows + "\")");
    c.window.bidirectional = flows == "bi";
  }
  if (w.contains("min_ip_len")) {
    c.window.min_ip_len = get_u32(w, "min_ip_len", "window.");
    if (c.window.min_ip_len > 65535) bad("window.min_ip_len must be <= 65535 (got " + std::to_string(c.window.min_ip_len) + ")");
  }

  c.resolution = get_u32(j, "resolution");
  c.max_size = get_u32(j, "max_size");
  const std::string axis = get_str(j, "time_axis");
  if (!time_axis_from_name(axis, c.time_axis))
    bad("time_axis must be \"span\", \"fixed\" or \"log\" (got \"" + axis + "\")");
  c.horizon_s = get_num(j, "horizon_s");
  c.log_tau_s = get_num(j, "log_tau_s");
  c.clip = static_cast<float>(get_num(j, "clip"));
  const std::string norm = get_str(j, "norm");
  if (!normalisation_from_name(norm, c.norm))
    bad("norm must be \"clip_scale\" or \"log\" (got \"" + norm + "\")");
  if (j.contains("channels")) c.channels = get_u32(j, "channels");

  const std::string err = c.validate();
  if (!err.empty()) bad(err);
  out = c;
}

void build_histogram(const PictureConfig& cfg, const WindowInfo& info, const PacketRecord* recs,
                     uint32_t n, uint32_t* counts) noexcept {
  if (cfg.resolution == 0 || cfg.resolution > kMaxResolution) return;
  std::memset(counts, 0, picture_floats(cfg) * sizeof(uint32_t));
  if (!usable(cfg) || recs == nullptr) return;
  const Binner b = make_binner(cfg, info, recs, n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t& c = counts[b.index(recs[i])];
    const uint32_t s = c + weight_of(recs[i]);
    c = s < c ? std::numeric_limits<uint32_t>::max() : s;
  }
}

void build_flowpic(const PictureConfig& cfg, const WindowInfo& info, const PacketRecord* recs,
                   uint32_t n, float* out) noexcept {
  if (cfg.resolution == 0 || cfg.resolution > kMaxResolution) return;
  const std::size_t pixels = picture_floats(cfg);
  std::memset(out, 0, pixels * sizeof(float));
  if (!usable(cfg) || recs == nullptr || n == 0) return;
  const Binner b = make_binner(cfg, info, recs, n);
  const float clip = cfg.clip;
  const Normalisation norm = cfg.norm;
  const float log_clip = std::log1p(clip);

  if (n <= kSparseRecords) {
    // The picture is mostly zeros: normalise only the pixels the records touched. A
    // touched pixel is marked done by storing its value negated (values are > 0).
    uint32_t idx[kSparseRecords];
    for (uint32_t i = 0; i < n; ++i) {
      idx[i] = b.index(recs[i]);
      out[idx[i]] += static_cast<float>(weight_of(recs[i]));
    }
    for (uint32_t i = 0; i < n; ++i) {
      const float v = out[idx[i]];
      if (v > 0.f) out[idx[i]] = -normalise(v, clip, norm, log_clip);
    }
    for (uint32_t i = 0; i < n; ++i) out[idx[i]] = std::fabs(out[idx[i]]);
    return;
  }

  for (uint32_t i = 0; i < n; ++i) out[b.index(recs[i])] += static_cast<float>(weight_of(recs[i]));
  if (norm == Normalisation::kClipScale) {
    for (std::size_t i = 0; i < pixels; ++i) out[i] = (out[i] < clip ? out[i] : clip) / clip;
  } else {
    for (std::size_t i = 0; i < pixels; ++i)
      if (out[i] != 0.f) out[i] = normalise(out[i], clip, norm, log_clip);
  }
}

}  // namespace flowpic
