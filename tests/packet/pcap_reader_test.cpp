// PcapReader + parser on real captures (tests/data, nDPI's test corpus) with answers taken
// from tshark, and on cut or corrupted copies of them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "packet/pcap_reader.hpp"

using namespace flowpic;
namespace fs = std::filesystem;

namespace {

std::string data_dir() {
  const char* d = std::getenv("FLOWPIC_TEST_DATA");
  return d ? d : "tests/data";
}
std::string data_file(const std::string& name) { return data_dir() + "/" + name; }

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A fresh directory per test under the system temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("flowpic-packet-" + std::to_string(::getpid()) + "-" + info->name());
    fs::create_directories(path_);
  }
  ~TempDir() { std::error_code ec; fs::remove_all(path_, ec); }
  std::string write(const std::string& name, const uint8_t* data, std::size_t n) const {
    const std::string p = (path_ / name).string();
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
    return p;
  }
 private:
  fs::path path_;
};

struct ReadSummary {
  uint64_t packets = 0;
  ParseCounters counters;
  std::set<FlowKey> flows;
  uint64_t ip_bytes = 0;
  uint64_t first_ts = 0, last_ts = 0;
  std::string error;
};

ReadSummary read_all(const std::string& path) {
  ReadSummary s;
  PcapReader reader(path);
  RawPacket pkt;
  ParsedPacket parsed;
  while (reader.next(pkt)) {
    if (s.packets == 0) s.first_ts = pkt.ts_ns;
    s.last_ts = pkt.ts_ns;
    ++s.packets;
    EXPECT_LE(pkt.caplen, pkt.wirelen);
    const ParseResult r = parse_packet(pkt.data, pkt.caplen, reader.link_type(), parsed);
    s.counters.add(r);
    if (r == ParseResult::kOk || r == ParseResult::kOkFragment) {
      s.flows.insert(parsed.key);
      s.ip_bytes += parsed.ip_len;
    }
  }
  EXPECT_EQ(reader.packets_read(), s.packets);
  s.error = reader.error();
  return s;
}

// Known answers for the shipped captures. All figures come from tshark 4.0 (Debian 12), not from
// this parser: packets from `capinfos -c`; the rest from
//   tshark -r FILE -o ip.defragment:FALSE -o ipv6.defragment:FALSE -T fields -E occurrence=f
//     -e frame.protocols -e ip.src -e ip.dst -e ip.proto -e ip.frag_offset -e ip.len
//     -e ipv6.src -e ipv6.dst -e ipv6.plen -e ipv6.nxt -e ipv6.fraghdr.nxt -e ipv6.fraghdr.offset
//     -e tcp/udp/sctp.srcport/dstport -e frame.time_epoch
// turned into unidirectional keys of the outermost IP header (no ports on non-first fragments
// and non-TCP/UDP/SCTP protocols); ip_bytes sums ip.len (IPv6: plen + 40). The parser agreed
// with tshark packet by packet (key, length, ns timestamp) on every file.
struct CaptureAnswer {
  const char* file;
  int dlt;
  LinkType link;
  uint64_t packets, ok, ok_fragment, not_ip, flows, ip_bytes, first_ts, last_ts;
};

const CaptureAnswer kCaptures[] = {
    {"codm.pcap", 12, LinkType::kRawIp, 13, 13, 0, 0, 6, 3590, 1714945575038105000ull, 1714947445706350000ull},
    {"discord_mid_flow.pcap", 1, LinkType::kEthernet, 40, 40, 0, 0, 2, 2800, 1673444902267546000ull, 1673444926267852000ull},
    {"dns2tcp_tunnel.pcap", 113, LinkType::kLinuxSll, 50, 50, 0, 0, 2, 8088, 1585754662417775000ull, 1585754670531367000ull},
    {"dns_fragmented.pcap", 1, LinkType::kEthernet, 66, 59, 7, 0, 49, 22246, 1558968008021140000ull, 1560869916477286000ull},
    {"linecall_falsepositve.pcap", 1, LinkType::kEthernet, 42, 42, 0, 0, 2, 15518, 1673444966772848000ull, 1673445117157636000ull},
    {"nats.pcap", 0, LinkType::kBsdLoopback, 27, 27, 0, 0, 4, 2352, 1586288040558498000ull, 1586288042776134000ull},
    {"openvpn-tlscrypt.pcap", 0, LinkType::kBsdLoopback, 13, 13, 0, 0, 2, 5302, 1650106007514745000ull, 1650106007530072000ull},
    {"ossfuzz_seed_fake_traces_1.pcapng", 228, LinkType::kRawIp, 21, 21, 0, 0, 12, 3325, 1675096016031349000ull, 1675181373264924000ull},
    {"stun_wa_call.pcapng", 1, LinkType::kEthernet, 591, 591, 0, 0, 24, 125415, 1676659968029444028ull, 1676660035303048767ull},
    {"wa_voice.pcap", 1, LinkType::kEthernet, 736, 734, 0, 2, 44, 159940, 1561455687942546000ull, 1561455743434771000ull},
    {"zoom2.pcap", 1, LinkType::kEthernet, 342, 342, 0, 0, 8, 107846, 1642965458402978000ull, 1642965500043016000ull},
};

}  // namespace

TEST(PcapReaderCaptures, ShippedCapturesMatchTshark) {
  for (const CaptureAnswer& a : kCaptures) {
    SCOPED_TRACE(a.file);
    {
      PcapReader reader(data_file(a.file));
      EXPECT_EQ(reader.dlt(), a.dlt);
      EXPECT_EQ(reader.link_type(), a.link);
    }
    const ReadSummary s = read_all(data_file(a.file));
    EXPECT_EQ(s.error, "");
    EXPECT_EQ(s.packets, a.packets);
    EXPECT_EQ(s.counters.total(), a.packets);
    EXPECT_EQ(s.counters.get(ParseResult::kOk), a.ok);
    EXPECT_EQ(s.counters.get(ParseResult::kOkFragment), a.ok_fragment);
    EXPECT_EQ(s.counters.get(ParseResult::kNotIp), a.not_ip);
    EXPECT_EQ(s.flows.size(), a.flows);
    EXPECT_EQ(s.ip_bytes, a.ip_bytes);
    EXPECT_EQ(s.first_ts, a.first_ts);
    EXPECT_EQ(s.last_ts, a.last_ts);
  }
}

TEST(PcapReaderCaptures, FragmentedCaptureKeysOneKnownFragment) {
  // dns_fragmented.pcap frame 3 is a non-first IPv4 fragment (tshark: ip.frag_offset 1480).
  PcapReader reader(data_file("dns_fragmented.pcap"));
  RawPacket pkt;
  ParsedPacket parsed;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reader.next(pkt));
  ASSERT_EQ(parse_packet(pkt.data, pkt.caplen, reader.link_type(), parsed), ParseResult::kOkFragment);
  EXPECT_EQ(to_string(parsed.key), "udp 193.24.227.238 -> 172.217.40.76 frag");
  EXPECT_EQ(parsed.ip_len, 250u);
}

TEST(PcapReaderCaptures, IntentionallyMalformedFuzzCapture) {
  // nDPI's fuzz-2021-10-13.pcap: one record, then a cut record header (capinfos: "cut short").
  const ReadSummary s = read_all(data_file("fuzz-2021-10-13.pcap"));
  EXPECT_EQ(s.packets, 1u);
  EXPECT_EQ(s.counters.get(ParseResult::kNotIp), 1u);  // its loopback family is not an IP one
  EXPECT_NE(s.error.find("fuzz-2021-10-13.pcap"), std::string::npos) << s.error;
  EXPECT_NE(s.error.find("after packet 1"), std::string::npos) << s.error;
  EXPECT_NE(s.error.find("truncated"), std::string::npos) << s.error;
}

TEST(PcapReaderErrors, MissingFileSaysWhich) {
  const std::string path = data_file("no-such-capture.pcap");
  try {
    PcapReader reader(path);
    FAIL() << "opened a missing file";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot open " + path), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
  }
}

TEST(PcapReaderErrors, NotACaptureAndEmptyFile) {
  TempDir dir;
  const char text[] = "this is a text file, not a capture\n";
  const std::string txt = dir.write("notes.pcap", reinterpret_cast<const uint8_t*>(text), sizeof(text) - 1);
  try {
    PcapReader reader(txt);
    FAIL() << "opened a text file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open " + txt), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unknown file format"), std::string::npos) << e.what();
  }
  const std::string empty = dir.write("empty.pcap", nullptr, 0);
  EXPECT_THROW(PcapReader{empty}, std::runtime_error);
}

namespace {

// Offsets where pcap records end (after the 24-byte file header), read from the record headers.
std::vector<std::size_t> pcap_record_ends(const std::vector<uint8_t>& file) {
  std::vector<std::size_t> ends;
  EXPECT_EQ(file[0], 0xd4);  // little-endian microsecond pcap
  std::size_t off = 24;
  while (off + 16 <= file.size()) {
    uint32_t incl;
    std::memcpy(&incl, &file[off + 8], 4);
    off += 16 + incl;
    if (off > file.size()) break;
    ends.push_back(off);
  }
  return ends;
}

// Offsets where pcapng blocks end, and how many packet blocks (EPB 6, SPB 3, PB 2) end there.
struct BlockEnd { std::size_t end; uint64_t packets; };
std::vector<BlockEnd> pcapng_block_ends(const std::vector<uint8_t>& file) {
  std::vector<BlockEnd> ends;
  std::size_t off = 0;
  uint64_t packets = 0;
  while (off + 12 <= file.size()) {
    uint32_t type, len;
    std::memcpy(&type, &file[off], 4);
    std::memcpy(&len, &file[off + 4], 4);
    if (len < 12 || off + len > file.size()) break;
    off += len;
    if (type == 6 || type == 3 || type == 2) ++packets;
    ends.push_back({off, packets});
  }
  return ends;
}

}  // namespace

// Cut at every byte: the reader either refuses the file (inside the file header), or delivers
// exactly the records that are whole and reports an error iff the cut falls inside a record.
TEST(PcapReaderErrors, PcapCutAtEveryByte) {
  TempDir dir;
  const std::vector<uint8_t> file = read_bytes(data_file("nats.pcap"));
  ASSERT_EQ(file.size(), 2916u);
  const std::vector<std::size_t> ends = pcap_record_ends(file);
  ASSERT_EQ(ends.size(), 27u);
  ASSERT_EQ(ends.back(), file.size());
  for (std::size_t cut = 0; cut < file.size(); ++cut) {
    SCOPED_TRACE(cut);
    const std::string path = dir.write("cut.pcap", file.data(), cut);
    if (cut < 24) {
      EXPECT_THROW(PcapReader{path}, std::runtime_error);
      continue;
    }
    uint64_t whole = 0;
    bool at_boundary = cut == 24;
    for (std::size_t e : ends) {
      if (e <= cut) ++whole;
      if (e == cut) at_boundary = true;
    }
    const ReadSummary s = read_all(path);
    ASSERT_EQ(s.packets, whole);
    ASSERT_EQ(s.counters.get(ParseResult::kOk), whole);
    ASSERT_EQ(s.error.empty(), at_boundary) << s.error;
    if (!at_boundary) {
      ASSERT_NE(s.error.find("after packet " + std::to_string(whole)), std::string::npos) << s.error;
    }
  }
}

TEST(PcapReaderErrors, PcapngCutInsideAndBetweenBlocks) {
  TempDir dir;
  const std::vector<uint8_t> file = read_bytes(data_file("stun_wa_call.pcapng"));
  const std::vector<BlockEnd> ends = pcapng_block_ends(file);
  ASSERT_FALSE(ends.empty());
  ASSERT_EQ(ends.back().end, file.size());
  ASSERT_EQ(ends.back().packets, 591u);
  // Block 0 is the section header, block 1 the interface description: libpcap needs both to open.
  const std::size_t header_end = ends[1].end;
  std::vector<std::size_t> cuts = {0, 8, ends[0].end, header_end - 1};
  for (std::size_t i = 2; i < ends.size(); i += 37) {
    cuts.push_back(ends[i].end);      // between blocks
    cuts.push_back(ends[i].end - 5);  // inside a block
    cuts.push_back(ends[i].end + 9);  // inside the next block's header
  }
  for (std::size_t cut : cuts) {
    if (cut >= file.size()) continue;
    SCOPED_TRACE(cut);
    const std::string path = dir.write("cut.pcapng", file.data(), cut);
    if (cut < header_end) {
      EXPECT_THROW(PcapReader{path}, std::runtime_error);
      continue;
    }
    uint64_t whole = 0;
    bool at_boundary = false;
    for (const BlockEnd& b : ends) {
      if (b.end <= cut) whole = b.packets;
      if (b.end == cut) at_boundary = true;
    }
    const ReadSummary s = read_all(path);
    EXPECT_EQ(s.packets, whole);
    EXPECT_EQ(s.error.empty(), at_boundary) << s.error;
  }
}

TEST(PcapReaderErrors, CorruptRecordMidFileStopsWithErrorAfterGoodPackets) {
  TempDir dir;
  std::vector<uint8_t> file = read_bytes(data_file("dns_fragmented.pcap"));
  const std::vector<std::size_t> ends = pcap_record_ends(file);
  ASSERT_EQ(ends.size(), 66u);
  // Record 5 claims a captured length of ~2 GB.
  const uint32_t huge = 0x7ffffff0;
  std::memcpy(&file[ends[3] + 8], &huge, 4);
  const std::string path = dir.write("corrupt.pcap", file.data(), file.size());
  const ReadSummary s = read_all(path);
  EXPECT_EQ(s.packets, 4u);
  EXPECT_NE(s.error.find(path), std::string::npos) << s.error;
  EXPECT_NE(s.error.find("after packet 4"), std::string::npos) << s.error;
  // Reading stays stopped: a second call does not go past the bad record.
  PcapReader reader(path);
  RawPacket pkt;
  while (reader.next(pkt)) {}
  EXPECT_FALSE(reader.next(pkt));
  EXPECT_EQ(reader.packets_read(), 4u);
  EXPECT_FALSE(reader.error().empty());
}

// The whole nDPI corpus from ../shared (skipped where it is absent): every file opens and reads
// without a crash. 109,288 packets in 543 files, as capinfos counts them (shared/data/PROVENANCE.md);
// 23 of them sit in PPP, PPI and Cisco HDLC captures, whose link types we do not parse.
TEST(PcapReaderCaptures, WholeNdpiCorpus) {
  const char* repo = std::getenv("FLOWPIC_REPO");
  const fs::path corpus = fs::path(repo ? repo : ".") / ".." / "shared" / "data" / "ndpi" / "pcap";
  if (!fs::is_directory(corpus)) GTEST_SKIP() << corpus << " is not here";
  uint64_t files = 0, packets = 0, errors = 0;
  ParseCounters counters;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string name = entry.path().filename().string();
    if (name == "README.txt") continue;
    ++files;
    const ReadSummary s = read_all(entry.path().string());
    packets += s.packets;
    counters += s.counters;
    if (!s.error.empty()) {
      ++errors;
      EXPECT_EQ(name, "fuzz-2021-10-13.pcap") << s.error;
    }
  }
  EXPECT_EQ(files, 543u);
  EXPECT_EQ(packets, 109288u);
  EXPECT_EQ(counters.total(), 109288u);
  EXPECT_EQ(counters.get(ParseResult::kUnsupportedLink), 23u);
  EXPECT_EQ(errors, 1u);
}
