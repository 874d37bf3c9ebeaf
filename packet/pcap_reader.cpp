#include "packet/pcap_reader.hpp"

#include <pcap/pcap.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace flowpic {

namespace {
// libpcap reads each record with two fread calls; with stdio's default 4 KiB buffer most of the
// reading time went to read(2) system calls (measured: sys 2x user on 1.5 KB packets).
constexpr std::size_t kReadBuffer = 1 << 20;
}  // namespace

struct PcapReader::Impl {
  std::unique_ptr<char[]> buffer;  // stdio buffer of `handle`'s FILE: must outlive it
  pcap_t* handle = nullptr;
  std::string path;
  std::string error;
  uint64_t packets = 0;
  int dlt = -1;
  LinkType link = LinkType::kUnsupported;
  bool done = false;
};

PcapReader::PcapReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  // Small files (tests, short captures) get a small buffer.
  struct stat st {};
  std::size_t buffer_size = kReadBuffer;
  if (fstat(fileno(file), &st) == 0 && st.st_size >= 0 && static_cast<uint64_t>(st.st_size) < kReadBuffer)
    buffer_size = std::max<std::size_t>(static_cast<std::size_t>(st.st_size), BUFSIZ);
  impl_->buffer = std::make_unique_for_overwrite<char[]>(buffer_size);
  std::setvbuf(file, impl_->buffer.get(), _IOFBF, buffer_size);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // Nanosecond precision: libpcap scales microsecond pcap and any pcapng resolution to ns.
  impl_->handle = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (impl_->handle == nullptr) {
    std::fclose(file);  // on failure libpcap leaves the FILE to us
    throw std::runtime_error("cannot open " + path + ": " + (errbuf[0] ? errbuf : "unknown libpcap error"));
  }
  impl_->path = path;
  impl_->dlt = pcap_datalink(impl_->handle);
  impl_->link = link_type_from_dlt(impl_->dlt);
}

PcapReader::~PcapReader() {
  if (impl_ && impl_->handle) pcap_close(impl_->handle);  // closes the FILE, then the buffer goes
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
