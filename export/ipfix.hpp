// IPFIX (RFC 7011) message encoder: templates, flow data records and the options records that
// name the classes, written into a caller's buffer, every message at most `max_message` bytes.
// Pure: no I/O, no allocation after construction, no exception on the encoding path; the
// sending thread (export/exporter.hpp) owns sockets, timing and sequence numbers.
//
// Templates (docs/export.md has the table):
//   256 IPv4 flow   sourceIPv4Address(8) destinationIPv4Address(12) sourceTransportPort(7)
//                   destinationTransportPort(11) protocolIdentifier(4) octetDeltaCount(1)
//                   packetDeltaCount(2) flowStartMilliseconds(152) flowEndMilliseconds(153)
//                   ingressInterface(10) flowEndReason(136) applicationId(95, 3 bytes)
//                   flowpicConfidence(PEN 32473 / 1, float32) flowpicModelId(PEN 32473 / 2, string)
//   257 IPv6 flow   the same with sourceIPv6Address(27) destinationIPv6Address(28)
//   258 options     scope observationDomainId(149); applicationId(95) applicationName(96, 32 bytes)
//                   applicationDescription(94, 64 bytes), NUL-padded (nfdump reads only fixed lengths)
// applicationId = RFC 6759 classification engine 6 (User-Defined) + a 16-bit selector id, sent as
// the 3 bytes 06 K 06: K = the class's id + 1 (flowpicd's class table, shared by every model
// loaded; 0 = unclassified), selector id = K * 256 + 6. The palindrome is deliberate: nfdump 1.7
// stores a flow's applicationId byte-swapped but the options' raw, and matches names only when
// both read alike; pmacct maps ids of 2, 3 or 5 bytes. Classes past K = 255 go out unclassified.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/flow_key.hpp"

namespace flowpic::ipfix {

constexpr uint16_t kVersion = 10;
constexpr uint16_t kTemplateV4 = 256, kTemplateV6 = 257, kTemplateOptions = 258;
constexpr uint32_t kPen = 32473;  // RFC 5612's documentation PEN: register your own for production
constexpr uint16_t kIeConfidence = 1, kIeModelId = 2;  // enterprise element ids under kPen
constexpr uint8_t kEngineUserDefined = 6;              // RFC 6759 classification engine id
constexpr uint16_t kUnclassified = 0;                  // K of flows without a class
constexpr uint16_t kMaxSelector = 255;                 // largest K: classes with a larger id + 1 are unclassified
constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kAppNameBytes = 32, kAppDescriptionBytes = 64;
constexpr std::size_t kMinMessage = 512;               // smallest max_message: fits the templates, or any one record

// RFC 7011 / IANA flowEndReason values.
enum class EndReason : uint8_t { kIdle = 1, kActive = 2, kEndDetected = 3, kForced = 4, kLackOfResources = 5 };

// One flow record as exported.
struct Flow {
  FlowKey key;
  uint64_t start_ms = 0, end_ms = 0;  // since the epoch
  uint64_t packets = 0, bytes = 0;    // delta since the flow's previous record
  uint32_t ingress = 0;
  EndReason reason = EndReason::kIdle;
  uint16_t app = kUnclassified;       // K (class id + 1), see app_id_bytes
  float confidence = 0.f;
  std::string_view model;             // model id ("" none); at most 200 bytes are sent
};

// An entry of the options template: applicationId -> applicationName, applicationDescription.
struct AppName {
  uint16_t app = 0;
  std::string_view name, description;  // cut to kAppNameBytes, kAppDescriptionBytes
};

// Builds one message at a time into `buf` (at least max_message bytes, owned by the caller).
class MessageBuilder {
 public:
  MessageBuilder(uint32_t domain, std::size_t max_message) noexcept;
  // Starts a message: header with export time and sequence number (data records sent before it).
  void begin(uint8_t* buf, uint32_t export_time_s, uint32_t sequence) noexcept;
  // The template set (256, 257) and the options template set (258). False: no room.
  bool add_templates() noexcept;
  // One options data record. False: no room (nothing written).
  bool add_app_name(const AppName& a) noexcept;
  // One flow data record. False: no room (nothing written).
  bool add_flow(const Flow& f) noexcept;
  // Closes the open set, writes the message length; returns the message's bytes.
  std::size_t finish() noexcept;
  uint32_t data_records() const noexcept { return records_; }  // in this message (flows + options)
  uint32_t flow_records() const noexcept { return flows_; }
  std::size_t size() const noexcept { return at_; }
  bool empty() const noexcept { return at_ <= kHeaderBytes; }
  std::size_t max_message() const noexcept { return max_; }

 private:
  bool open_set(uint16_t id, std::size_t need) noexcept;
  void close_set() noexcept;
  uint32_t domain_;
  std::size_t max_;
  uint8_t* buf_ = nullptr;
  std::size_t at_ = 0;
  std::size_t set_at_ = 0;  // offset of the open set's header (0: none)
  uint16_t set_id_ = 0;
  uint32_t records_ = 0, flows_ = 0;
};

// applicationId bytes for K (3 bytes: engine 6, K, 6).
inline void app_id_bytes(uint16_t app, uint8_t out[3]) noexcept {
  out[0] = kEngineUserDefined;
  out[1] = static_cast<uint8_t>(app);
  out[2] = kEngineUserDefined;
}

// K of a class id (-1 = none): id + 1, or kUnclassified past kMaxSelector.
inline uint16_t selector_of(int32_t cls) noexcept {
  return cls < 0 || cls + 1 > kMaxSelector ? kUnclassified : static_cast<uint16_t>(cls + 1);
}

}  // namespace flowpic::ipfix
