#include "packet/pcap_reader.hpp"

#include <pcap/pcap.h>

#include <stdexcept>

namespace flowpic {

struct PcapReader::Impl {
  pcap_t* handle = nullptr;
  std::string path;
  std::string error;
  uint64_t packets = 0;
  int dlt = -1;
  LinkType link = LinkType::kUnsupported;
  bool done = false;
};

PcapReader::PcapReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // Nanosecond precision: libpcap scales microsecond pcap and any pcapng resolution to ns.
  impl_->handle = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (impl_->handle == nullptr) {
    throw std::runtime_error("cannot open " + path + ": " + (errbuf[0] ? errbuf : "unknown libpcap error"));
  }
  impl_->path = path;
  impl_->dlt = pcap_datalink(impl_->handle);
  impl_->link = link_type_from_dlt(impl_->dlt);
}

PcapReader::~PcapReader() {
  if (impl_ && impl_->handle) pcap_close(impl_->handle);
}

int PcapReader::dlt() const noexcept { return impl_->dlt; }
LinkType PcapReader::link_type() const noexcept { return impl_->link; }
const std::string& PcapReader::error() const noexcept { return impl_->error; }
uint64_t PcapReader::packets_read() const noexcept { return impl_->packets; }

bool PcapReader::next(RawPacket& pkt) {
  if (impl_->done) return false;
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  const int rc = pcap_next_ex(impl_->handle, &hdr, &data);
  if (rc == 1) {
    ++impl_->packets;
    // With nanosecond precision tv_usec carries nanoseconds.
    pkt.ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(hdr->ts.tv_usec);
    pkt.data = data;
    pkt.caplen = hdr->caplen;
    pkt.wirelen = hdr->len;
    return true;
  }
  impl_->done = true;
  if (rc != PCAP_ERROR_BREAK) {
    // A corrupt or cut record: the packets before it were delivered, say where it stopped.
    impl_->error = impl_->path + ": corrupt capture after packet " + std::to_string(impl_->packets) + ": " +
                   (rc == PCAP_ERROR ? pcap_geterr(impl_->handle) : "libpcap returned " + std::to_string(rc));
  }
  return false;
}

}  // namespace flowpic
