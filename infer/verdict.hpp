// The one place a verdict becomes JSON, so `flowpic classify` and flowpicd print the same lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/window.hpp"

namespace flowpic {

struct VerdictFormat {
  const std::vector<std::string>* classes = nullptr;  // class names, index = class
  std::string model_id;                               // Model::id()
  float unknown_below = 0.f;                          // confidence threshold; below it: "unknown"
};

// Index of the most probable class (ties: lowest index) and its probability.
int argmax(const float* probs, int classes, float* confidence = nullptr) noexcept;

// Temperature scaling of probabilities in place: p_i^(1/T) renormalised, which equals
// softmax(logits / T); rows x k values. T = 1 leaves them unchanged. No allocation.
void apply_temperature(float* probs, std::size_t rows, int k, double temperature) noexcept;

// One JSON object, no trailing newline:
// {"flow":"udp 1.2.3.4:5 -> 6.7.8.9:10","proto":17,"src":"1.2.3.4","sport":5,"dst":"6.7.8.9","dport":10,
//  "window":{"index":0,"start":1.5,"end":2.5,"first":1.5,"last":2.4,"reason":"count"},
//  "packets":20,"bytes":12345,"class":"VoIP","confidence":0.97,
//  "probs":{"VoIP":0.97,...},"model":"ode20-1a2b3c4d"}
// Times are seconds (trace time: since the epoch) with microsecond precision.
std::string verdict_json(const WindowInfo& info, const float* probs, const VerdictFormat& fmt);

}  // namespace flowpic
