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

// Flow verdicts that accumulate the evidence of a flow's windows: the flow's class is the
// argmax of the mean of its windows' (calibrated) probabilities so far, its confidence that
// mean's value. This is what the appliance acts on (the lcore's per-flow verdict); `flowpic eval`'s
// flow-level accuracy takes the same mean over a connection's windows in a capture (keyed by its
// endpoints there, not by a table slot). Flows are the flow table's slots: a window's
// (flow_slot, flow_gen) names its flow, and a new generation in a slot starts a new flow.
// All memory is taken by reset(); add() allocates nothing. Not thread-safe: one owner, or a lock.
class FlowEvidence {
 public:
  static constexpr int kMaxClasses = 16;  // models with more classes (app id) keep no evidence:
                                          // their flow verdict is the window's
  // Forgets everything; room for `capacity` slots of `classes` classes.
  void reset(uint32_t capacity, int classes, uint32_t model_tag = 0);
  bool keeps(int classes, uint32_t model_tag) const noexcept { return classes == k_ && model_tag == tag_; }
  // Adds one window's probabilities to its flow. Returns the flow's class; *confidence = its
  // mean probability, *windows = windows counted (1 for the flow's first window, or when no
  // evidence is kept: slot out of range, too many classes).
  int add(uint32_t slot, uint32_t gen, const float* probs, float* confidence, uint32_t* windows) noexcept;

 private:
  int k_ = 0;
  uint32_t tag_ = 0, capacity_ = 0;
  std::vector<float> sums_;     // capacity x k
  std::vector<uint32_t> gen_;   // generation whose windows sums_ holds (0: none)
  std::vector<uint32_t> count_;
};

// The flow verdict of one window (what FlowEvidence::add returned), for verdict_json.
struct FlowVerdict {
  int cls = -1;            // -1: not given (the line carries no "flow_verdict")
  float confidence = 0.f;
  uint32_t windows = 0;
};

// One JSON object, no trailing newline:
// {"flow":"udp 1.2.3.4:5 -> 6.7.8.9:10","proto":17,"src":"1.2.3.4","sport":5,"dst":"6.7.8.9","dport":10,
//  "window":{"index":0,"start":1.5,"end":2.5,"first":1.5,"last":2.4,"reason":"count"},
//  "packets":20,"bytes":12345,"class":"VoIP","confidence":0.97,
//  "probs":{"VoIP":0.97,...},"model":"ode20-1a2b3c4d",
//  "flow_verdict":{"class":"VoIP","confidence":0.95,"windows":3}}
// Times are seconds (trace time: since the epoch) with microsecond precision. "flow_verdict"
// (the flow's accumulated verdict after this window, FlowEvidence) is present when `flow` is
// given; its class is "unknown" below fmt.unknown_below too.
std::string verdict_json(const WindowInfo& info, const float* probs, const VerdictFormat& fmt,
                         const FlowVerdict& flow = {});

}  // namespace flowpic
