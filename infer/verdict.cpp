#include "infer/verdict.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "common/clock.hpp"

namespace flowpic {

int argmax(const float* probs, int classes, float* confidence) noexcept {
  int best = 0;
  for (int c = 1; c < classes; ++c)
    if (probs[c] > probs[best]) best = c;
  if (confidence) *confidence = classes > 0 ? probs[best] : 0.f;
  return best;
}

namespace {
// Seconds with microsecond precision, printed without float noise.
double seconds(TimeNs ns) { return std::round(static_cast<double>(ns) / 1e3) / 1e6; }
double rounded(float p) { return std::round(static_cast<double>(p) * 1e6) / 1e6; }
}  // namespace

void FlowEvidence::reset(uint32_t capacity, int classes, uint32_t model_tag) {
  k_ = classes;
  tag_ = model_tag;
  const bool keep = classes > 0 && classes <= kMaxClasses;
  capacity_ = keep ? capacity : 0;
  sums_.assign(static_cast<std::size_t>(capacity_) * (keep ? classes : 0), 0.f);
  gen_.assign(capacity_, 0);
  count_.assign(capacity_, 0);
}

int FlowEvidence::add(uint32_t slot, uint32_t gen, const float* probs, float* confidence, uint32_t* windows) noexcept {
  if (slot >= capacity_) {
    *windows = 1;
    return argmax(probs, k_, confidence);
  }
  float* s = sums_.data() + static_cast<std::size_t>(slot) * k_;
  if (gen_[slot] != gen || count_[slot] == 0) {
    gen_[slot] = gen;
    count_[slot] = 0;
    std::fill(s, s + k_, 0.f);
  }
  for (int c = 0; c < k_; ++c) s[c] += probs[c];
  const uint32_t n = ++count_[slot];
  float best = 0.f;
  const int cls = argmax(s, k_, &best);
  *confidence = best / static_cast<float>(n);
  *windows = n;
  return cls;
}

std::string verdict_json(const WindowInfo& info, const float* probs, const VerdictFormat& fmt, const FlowVerdict& flow) {
  using nlohmann::ordered_json;
  const auto& classes = *fmt.classes;
  const int n = static_cast<int>(classes.size());
  float conf = 0.f;
  const int best = argmax(probs, n, &conf);
  const bool has_ports = !(info.key.flags & FlowKey::kFlagFragment) &&
                         (info.key.proto == 6 || info.key.proto == 17 || info.key.proto == 132);
  ordered_json j;
  j["flow"] = to_string(info.key);
  j["proto"] = info.key.proto;
  j["src"] = address_string(info.key, true);
  if (has_ports) j["sport"] = info.key.sport;
  j["dst"] = address_string(info.key, false);
  if (has_ports) j["dport"] = info.key.dport;
  j["window"] = {{"index", info.index},
                 {"start", seconds(info.start_ns)},
                 {"end", seconds(info.end_ns)},
                 {"first", seconds(info.first_ns)},
                 {"last", seconds(info.last_ns)},
                 {"reason", close_reason_name(info.reason)}};
  j["packets"] = info.packets;
  j["bytes"] = info.bytes;
  j["class"] = conf < fmt.unknown_below ? std::string("unknown") : classes[best];
  j["confidence"] = rounded(conf);
  ordered_json p = ordered_json::object();
  for (int c = 0; c < n; ++c) p[classes[c]] = rounded(probs[c]);
  j["probs"] = std::move(p);
  j["model"] = fmt.model_id;
  if (flow.cls >= 0 && flow.cls < n)
    j["flow_verdict"] = {{"class", flow.confidence < fmt.unknown_below ? std::string("unknown") : classes[flow.cls]},
                         {"confidence", rounded(flow.confidence)},
                         {"windows", flow.windows}};
  return j.dump();
}

void apply_temperature(float* probs, std::size_t rows, int k, double temperature) noexcept {
  if (temperature == 1.0 || k <= 0) return;
  const double inv = 1.0 / temperature;
  for (std::size_t r = 0; r < rows; ++r) {
    float* p = probs + r * static_cast<std::size_t>(k);
    // In log space, shifted by the largest log-probability (no underflow to all zeros).
    double mx = -1e300;
    for (int i = 0; i < k; ++i) mx = std::max(mx, std::log(std::max(static_cast<double>(p[i]), 1e-30)) * inv);
    double sum = 0;
    for (int i = 0; i < k; ++i) sum += std::exp(std::log(std::max(static_cast<double>(p[i]), 1e-30)) * inv - mx);
    for (int i = 0; i < k; ++i)
      p[i] = static_cast<float>(std::exp(std::log(std::max(static_cast<double>(p[i]), 1e-30)) * inv - mx) / sum);
  }
}

}  // namespace flowpic
