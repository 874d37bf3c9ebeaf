// The IPFIX exporting process: one thread that drains the flow records its producers (polling
// lcores, or `flowpic classify`) push through lock-free single-producer rings, waits for the
// verdicts of windows still in inference, encodes (export/ipfix.hpp) and sends them to one
// collector over UDP or TCP. Producers never wait on it: a full ring refuses the record and
// the producer counts the drop. A slow or absent collector stalls only this thread.
//
// Sequence numbers: the header's sequence number is the number of data records (flow and
// options records) in the messages sent before it, stamped when the message is sent; over TCP
// it continues across reconnects (a message cut by a broken connection is sent again whole, with
// the same number). Templates (and the class names) are sent at start, every template_refresh
// seconds over UDP, on every new TCP connection, and after publish() changed the classes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/flow_key.hpp"
#include "export/ipfix.hpp"

namespace flowpic {

struct ExportConfig {
  enum class Transport : uint8_t { kUdp, kTcp };
  std::string host = "127.0.0.1";
  uint16_t port = 4739;
  Transport transport = Transport::kUdp;
  uint32_t observation_domain = 1;
  double template_refresh_s = 60;   // UDP: templates and class names re-sent this often
  double active_timeout_s = 60;     // a flow active this long gets an update record (flow table)
  double idle_timeout_s = 0;        // 0: the flow table's idle timeout
  uint32_t mtu = 1500;              // messages fit one IP packet of this size (IPv4/IPv6 + UDP headers off)
  uint32_t ring_size = 16384;       // flow records waiting per producer (power of two)
  uint32_t buffer_records = 65536;  // TCP: records held while the collector is unreachable
  double verdict_wait_s = 5;        // a record waits this long for its last windows' verdicts
  std::string validate() const;     // "" or what to change (names the key)
};

// Parses "HOST:PORT" or "[V6]:PORT". Returns "" or the reason.
std::string parse_collector(const std::string& s, std::string* host, uint16_t* port);

// What a producer hands the exporter (ring element, 104 bytes).
struct FlowExportMsg {
  enum Kind : uint8_t { kFlow = 1, kLateVerdict = 2 };
  FlowKey key;                 // as the flow's first packet saw it
  uint64_t start_ns = 0, end_ns = 0;
  uint64_t packets = 0, bytes = 0;
  uint32_t slot = 0, gen = 0;  // the flow's table slot and generation (joins late verdicts)
  uint32_t model_tag = 0;
  float confidence = 0.f;
  uint32_t ingress = 0;
  int16_t cls = -1;            // global class id, -1 none
  uint16_t pending = 0;        // kFlow: verdicts of its windows not applied yet
  uint8_t kind = kFlow;
  uint8_t reason = 1;          // ipfix::EndReason
  uint8_t pad[6] = {};
};
static_assert(sizeof(FlowExportMsg) == 104);

// Lock-free single-producer single-consumer ring of FlowExportMsg (preallocated).
class ExportRing {
 public:
  explicit ExportRing(uint32_t size);  // power of two
  bool push(const FlowExportMsg& m) noexcept;             // producer; false when full
  uint32_t pop(FlowExportMsg* out, uint32_t max) noexcept;  // consumer
  bool empty() const noexcept;

 private:
  std::vector<FlowExportMsg> buf_;
  uint32_t mask_;
  alignas(64) std::atomic<uint32_t> head_{0};  // written by the producer
  alignas(64) std::atomic<uint32_t> tail_{0};  // written by the consumer
  alignas(64) uint32_t cached_tail_ = 0;       // producer's view
};

struct ExportStats {
  uint64_t flow_records = 0;        // flow records in messages sent (UDP: handed to the kernel)
  uint64_t options_records = 0;     // class-name records sent
  uint64_t messages = 0, bytes = 0;
  uint64_t template_sends = 0;      // times templates (+ class names) were sent
  uint64_t send_errors = 0;         // failed sends (UDP: their records are lost, counted below)
  uint64_t records_lost_send = 0;   // flow records in UDP messages the kernel refused
  uint64_t records_dropped_buffer = 0;  // TCP: flow records dropped, the buffer was full
  uint64_t records_buffered = 0;    // TCP: flow records held now, waiting for a connection
  uint64_t reconnects = 0;          // TCP connections established after the first
  uint64_t connected = 0;           // TCP: 1 while connected (UDP: 1)
  uint64_t verdict_timeouts = 0;    // records sent without their last verdicts (verdict_wait_s)
  uint64_t late_verdicts = 0;       // verdicts that reached ended flows
  uint64_t received = 0;            // flow records taken from the rings
};

class IpfixExporter {
 public:
  // Resolves the collector and opens the socket (TCP connects in the thread). Throws
  // std::runtime_error with one line naming the collector.
  IpfixExporter(const ExportConfig& cfg, uint32_t producers);
  ~IpfixExporter();
  IpfixExporter(const IpfixExporter&) = delete;
  IpfixExporter& operator=(const IpfixExporter&) = delete;

  // Producer side: never waits (false: ring full, the caller counts the drop).
  bool push(uint32_t producer, const FlowExportMsg& m) noexcept { return rings_[producer]->push(m); }
  // Waits for room (offline tools, and flowpicd's final flush).
  void push_wait(uint32_t producer, const FlowExportMsg& m) noexcept;

  // Model and class names (class id -> name, every class ever loaded); thread-safe, off the
  // fast path. New names are sent before the next records.
  void publish(uint32_t model_tag, const std::string& model_id, const std::vector<std::string>& class_names);

  void start();
  // Drains every ring, sends every waiting record, flushes, closes. Call after the producers stopped.
  void finish();
  ExportStats stats() const;
  const ExportConfig& config() const noexcept { return cfg_; }
  std::string collector() const;  // "udp 127.0.0.1:4739"

 private:
  struct Pending {
    FlowExportMsg msg;
    std::chrono::steady_clock::time_point deadline;
  };
  void run();
  void handle(uint32_t producer, const FlowExportMsg& m);
  void encode(const FlowExportMsg& m);
  void begin_message();
  void seal_message();              // finish the open message and queue/send it
  void send_control();              // templates + class names as their own messages
  bool transmit(std::vector<uint8_t>& msg, uint32_t records, uint32_t flows);  // false: not sent (TCP keeps it)
  void flush_backlog();
  bool tcp_connect();
  void tcp_close();
  void expire_pending(bool all);

  ExportConfig cfg_;
  std::vector<std::unique_ptr<ExportRing>> rings_;
  int fd_ = -1;
  int family_ = 0;
  std::vector<uint8_t> addr_;  // sockaddr of the collector
  std::thread thread_;
  std::atomic<bool> stop_{false};

  // Published by publish(), read by the thread.
  mutable std::mutex pub_mu_;
  uint64_t pub_version_ = 0;
  std::vector<std::string> pub_names_;
  std::unordered_map<uint32_t, std::string> pub_models_;

  // Thread state.
  ipfix::MessageBuilder mb_;
  std::vector<uint8_t> cur_;
  uint32_t cur_flows_ = 0;
  std::chrono::steady_clock::time_point cur_since_{};
  uint64_t seen_version_ = 0;
  std::vector<std::string> names_;
  std::unordered_map<uint32_t, std::string> models_;
  uint32_t sequence_ = 0;
  bool need_control_ = true;
  std::chrono::steady_clock::time_point last_control_{};
  struct Queued {
    std::vector<uint8_t> bytes;
    uint32_t records, flows;
  };
  std::deque<Queued> backlog_;  // TCP, while not connected
  uint64_t backlog_flows_ = 0;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{100};
  bool ever_connected_ = false;
  struct PKey {
    uint32_t producer, slot, gen;
    bool operator==(const PKey&) const = default;
  };
  struct PKeyHash {
    std::size_t operator()(const PKey& k) const noexcept {
      return std::hash<uint64_t>()((uint64_t(k.slot) << 32 | k.gen) * 0x9e3779b97f4a7c15ull + k.producer);
    }
  };
  std::unordered_map<PKey, Pending, PKeyHash> pending_;

  mutable std::mutex stats_mu_;
  ExportStats st_;
};

}  // namespace flowpic
