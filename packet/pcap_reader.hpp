// Offline capture reading (pcap and pcapng through libpcap) feeding the shared parser.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "packet/parse.hpp"

namespace flowpic {

struct RawPacket {
  uint64_t ts_ns;         // capture timestamp, ns since the epoch
  const uint8_t* data;    // valid until the next call to next()
  uint32_t caplen;        // bytes captured
  uint32_t wirelen;       // original length on the wire
};

class PcapReader {
 public:
  // Opens a pcap or pcapng file. Throws std::runtime_error with a clear message
  // ("cannot open X: <libpcap's reason>") on a missing or unreadable file.
  explicit PcapReader(const std::string& path);
  ~PcapReader();
  PcapReader(const PcapReader&) = delete;
  PcapReader& operator=(const PcapReader&) = delete;

  int dlt() const noexcept;
  LinkType link_type() const noexcept;
  // Next packet; false at the end of the file or on a read error (see error()).
  bool next(RawPacket& pkt);
  // Non-empty when reading stopped on a corrupt record rather than the end of the file.
  const std::string& error() const noexcept;
  uint64_t packets_read() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowpic
