// A capture file (pcap or pcapng, any link type) read record by record and every record parsed,
// as `flowpic classify` does.
#include <exception>

#include "fuzz/fuzz_target.hpp"
#include "packet/parse.hpp"
#include "packet/pcap_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowpic;
  fuzz::MemFile f(data, size);
  if (!f.ok()) return 0;
  try {
    PcapReader r(f.path());
    RawPacket p{};
    ParsedPacket out{};
    for (int n = 0; n < 100000 && r.next(p); ++n) {
      if (p.caplen > 0 && p.data == nullptr) __builtin_trap();
      (void)parse_packet(p.data, p.caplen, r.link_type(), out);
    }
  } catch (const std::exception&) {
    // a refused file is a clear error, not a crash
  }
  return 0;
}
