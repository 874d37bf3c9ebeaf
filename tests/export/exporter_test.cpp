// The IPFIX encoder and exporter against real sockets on loopback (no collector mock: the
// peers here decode the wire with tests/export/ipfix_decode.hpp). The collectors themselves
// (nfcapd/nfdump, nfacctd) are tested by collectors_test.py; they take no IPFIX over TCP, so
// TCP is tested here against a listener that parses the framing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "export/exporter.hpp"
#include "export/ipfix.hpp"
#include "tests/export/ipfix_decode.hpp"

using namespace flowpic;
using ipfix_test::Decoder;
using ipfix_test::Message;

namespace {

FlowExportMsg flow_msg(uint32_t i, bool v6 = false) {
  FlowExportMsg m;
  std::memset(&m.key, 0, sizeof m.key);
  m.key.family = v6 ? 6 : 4;
  m.key.src[0] = 10;
  m.key.src[3] = static_cast<uint8_t>(i);
  m.key.dst[0] = 192;
  m.key.dst[3] = 1;
  if (v6) m.key.src[15] = 7;
  m.key.sport = static_cast<uint16_t>(1000 + i % 60000);
  m.key.dport = 443;
  m.key.proto = 6;
  m.start_ns = 1700000000ull * 1000000000ull + i;
  m.end_ns = m.start_ns + 2500000000ull;
  m.packets = i + 1;
  m.bytes = 100 * (i + 1);
  m.slot = i;
  m.gen = 1;
  m.cls = static_cast<int16_t>(i % 3);
  m.confidence = 0.75f;
  m.model_tag = 1;
  m.reason = 1;
  return m;
}

int udp_receiver(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  int sz = 32 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  socklen_t l = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  *port = ntohs(a.sin_port);
  return fd;
}

std::vector<std::vector<uint8_t>> drain_udp(int fd, int wait_ms = 300) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> buf(70000);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) break;
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    out.emplace_back(buf.begin(), buf.begin() + n);
  }
  return out;
}

int tcp_listener(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(*port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  listen(fd, 4);
  socklen_t l = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  *port = ntohs(a.sin_port);
  return fd;
}

// Reads whole IPFIX messages from a TCP connection until EOF or until `stop_after` flow records.
struct TcpConn {
  std::vector<Message> msgs;
  uint64_t flows = 0;
};
TcpConn read_conn(int lfd, Decoder& dec, uint64_t stop_after, int timeout_ms = 10000) {
  TcpConn c;
  pollfd p{lfd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return c;
  const int fd = accept(lfd, nullptr, nullptr);
  std::vector<uint8_t> buf;
  uint8_t tmp[65536];
  dec.forget();  // a new transport session: templates start over
  for (;;) {
    pollfd q{fd, POLLIN, 0};
    if (poll(&q, 1, timeout_ms) <= 0) break;
    const ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    buf.insert(buf.end(), tmp, tmp + n);
    std::size_t used = 0;
    while (buf.size() >= 4 && buf.size() >= ipfix_test::g16(buf.data() + 2)) {
      Message m = dec.decode(buf.data(), buf.size(), &used);
      EXPECT_TRUE(m.ok) << m.error;
      if (!m.ok) break;
      buf.erase(buf.begin(), buf.begin() + static_cast<long>(used));
      c.flows += m.flows.size();
      c.msgs.push_back(std::move(m));
    }
    if (c.flows >= stop_after) break;
  }
  close(fd);  // unread bytes: the exporter's connection is reset
  return c;
}

}  // namespace

TEST(IpfixEncoder, RoundTrip) {
  std::vector<uint8_t> buf(1500);
  ipfix::MessageBuilder mb(42, 1472);
  mb.begin(buf.data(), 123, 9);
  ASSERT_TRUE(mb.add_templates());
  ASSERT_TRUE(mb.add_app_name({0, "unclassified", "no verdict"}));
  ASSERT_TRUE(mb.add_app_name({1, "VoIP", "flowpic class VoIP"}));
  ipfix::Flow f;
  f.key = flow_msg(5).key;
  f.start_ms = 1700000000123;
  f.end_ms = 1700000002123;
  f.packets = 20;
  f.bytes = 8283;
  f.ingress = 3;
  f.reason = ipfix::EndReason::kActive;
  f.app = 1;
  f.confidence = 0.5f;
  f.model = "corpus-lenet32-b7b4a673";
  ASSERT_TRUE(mb.add_flow(f));
  ipfix::Flow g = f;
  g.key = flow_msg(6, true).key;
  g.model = "";
  ASSERT_TRUE(mb.add_flow(g));
  const std::size_t n = mb.finish();
  EXPECT_EQ(mb.data_records(), 4u);
  Decoder dec;
  const Message m = dec.decode(buf.data(), n);
  ASSERT_TRUE(m.ok) << m.error;
  EXPECT_EQ(m.seq, 9u);
  EXPECT_EQ(m.domain, 42u);
  EXPECT_EQ(m.export_time, 123u);
  EXPECT_TRUE(m.templates && m.options_template);
  ASSERT_EQ(m.options.size(), 2u);
  EXPECT_EQ(m.options[1].at(95), (std::vector<uint8_t>{6, 1, 6}));
  EXPECT_STREQ(reinterpret_cast<const char*>(m.options[1].at(96).data()), "VoIP");
  EXPECT_EQ(m.options[1].num(149), 42u);
  ASSERT_EQ(m.flows.size(), 2u);
  const auto& r = m.flows[0];
  EXPECT_EQ(r.tmpl, ipfix::kTemplateV4);
  EXPECT_EQ(r.at(8), (std::vector<uint8_t>{10, 0, 0, 5}));
  EXPECT_EQ(r.num(7), f.key.sport);
  EXPECT_EQ(r.num(11), 443u);
  EXPECT_EQ(r.num(4), 6u);
  EXPECT_EQ(r.num(1), 8283u);
  EXPECT_EQ(r.num(2), 20u);
  EXPECT_EQ(r.num(152), 1700000000123u);
  EXPECT_EQ(r.num(153), 1700000002123u);
  EXPECT_EQ(r.num(10), 3u);
  EXPECT_EQ(r.num(136), 2u);
  EXPECT_EQ(r.at(95), (std::vector<uint8_t>{6, 1, 6}));
  const uint32_t cbits = static_cast<uint32_t>(r.num(ipfix::kIeConfidence, ipfix::kPen));
  float conf;
  std::memcpy(&conf, &cbits, 4);
  EXPECT_FLOAT_EQ(conf, 0.5f);
  const auto& model = r.at(ipfix::kIeModelId, ipfix::kPen);
  EXPECT_EQ(std::string(model.begin(), model.end()), "corpus-lenet32-b7b4a673");
  EXPECT_EQ(m.flows[1].tmpl, ipfix::kTemplateV6);
  EXPECT_EQ(m.flows[1].at(27).size(), 16u);
}

TEST(IpfixEncoder, MessagesStayWithinTheLimit) {
  for (std::size_t limit : {512u, 548u, 1472u, 8000u}) {
    std::vector<uint8_t> buf(limit);
    ipfix::MessageBuilder mb(1, limit);
    mb.begin(buf.data(), 0, 0);
    ipfix::Flow f;
    f.key = flow_msg(1).key;
    f.model = std::string(300, 'm');  // cut to 200 bytes
    uint32_t n = 0;
    while (mb.add_flow(f)) ++n;
    EXPECT_GT(n, 0u);
    EXPECT_LE(mb.finish(), limit);
    Decoder dec;
    std::vector<uint8_t> tb(limit);
    mb.begin(tb.data(), 0, 0);
    ASSERT_TRUE(mb.add_templates());
    dec.decode(tb.data(), mb.finish());
    const Message m = dec.decode(buf.data(), limit);
    ASSERT_TRUE(m.ok) << m.error;
    EXPECT_EQ(m.flows.size(), n);
  }
}

TEST(IpfixExporter, UdpSequenceNumbersCountDataRecordsAndMessagesFitTheMtu) {
  uint16_t port = 0;
  const int rx = udp_receiver(&port);
  // Read while the exporter sends: a default-sized socket buffer (rmem_max 208 KiB) would
  // otherwise overflow. Loopback keeps the order; whatever the kernel still drops shows as a
  // jump in the sequence numbers, and the test accounts for it.
  std::atomic<bool> sent{false};
  std::vector<std::vector<uint8_t>> dgrams;
  std::thread reader([&] {
    for (;;) {
      auto got = drain_udp(rx, 50);
      for (auto& d : got) dgrams.push_back(std::move(d));
      if (got.empty() && sent.load()) break;
    }
  });
  ExportConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  c.mtu = 576;
  c.observation_domain = 9;
  IpfixExporter ex(c, 2);
  ex.publish(1, "m1", {"VoIP", "Video", "Chat"});
  ex.start();
  constexpr uint32_t kN = 5000;
  std::thread other([&] {
    for (uint32_t i = 0; i < kN / 2; ++i) ex.push_wait(1, flow_msg(i + kN / 2));
  });
  for (uint32_t i = 0; i < kN / 2; ++i) ex.push_wait(0, flow_msg(i));
  other.join();
  ex.finish();
  sent = true;
  reader.join();
  close(rx);
  Decoder dec;
  uint64_t expect_seq = 0, flows = 0, options = 0, gaps = 0;
  for (const auto& d : dgrams) {
    EXPECT_LE(d.size(), 576u - 28u);
    const Message m = dec.decode(d.data(), d.size());
    ASSERT_TRUE(m.ok) << m.error;
    EXPECT_EQ(m.domain, 9u);
    EXPECT_GE(m.seq, static_cast<uint32_t>(expect_seq)) << "message " << &d - &dgrams[0];
    gaps += m.seq - expect_seq;
    expect_seq = m.seq + m.flows.size() + m.options.size();
    flows += m.flows.size();
    options += m.options.size();
  }
  const ExportStats st = ex.stats();
  EXPECT_EQ(st.flow_records, kN);
  EXPECT_EQ(st.send_errors, 0u);
  // Every data record is received or accounted for by a jump in the numbers (kernel drops).
  EXPECT_EQ(expect_seq, st.flow_records + st.options_records);
  EXPECT_EQ(flows + options + gaps, kN + st.options_records);
  EXPECT_EQ(st.options_records, 4u);  // unclassified + 3 classes, once
  EXPECT_GE(flows, kN * 9 / 10);      // the reader keeps up on loopback
  if (gaps == 0) EXPECT_EQ(dec.unknown_sets, 0u);  // templates came first
  std::printf("udp: %lu of %u flow records received, %lu lost in the kernel (seen in the sequence numbers)\n",
              static_cast<unsigned long>(flows), kN, static_cast<unsigned long>(gaps));
}

TEST(IpfixExporter, TemplatesComeBackAfterTheyWereLost) {
  uint16_t port = 0;
  const int rx = udp_receiver(&port);
  ExportConfig c;
  c.port = port;
  c.template_refresh_s = 0.2;
  IpfixExporter ex(c, 1);
  ex.publish(1, "m1", {"VoIP"});
  ex.start();
  for (uint32_t i = 0; i < 10; ++i) ex.push_wait(0, flow_msg(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto first = drain_udp(rx, 100);
  ASSERT_FALSE(first.empty());
  // The collector lost everything so far (templates included). Records sent before the next
  // refresh may not decode; records sent after it do: the third batch leaves 600 ms (three
  // refresh periods) after the second.
  for (uint32_t i = 0; i < 10; ++i) ex.push_wait(0, flow_msg(100 + i));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  for (uint32_t i = 0; i < 10; ++i) ex.push_wait(0, flow_msg(200 + i));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ex.finish();
  Decoder dec;
  uint64_t third = 0, messages_with_templates = 0;
  for (const auto& d : drain_udp(rx)) {
    const Message m = dec.decode(d.data(), d.size());
    ASSERT_TRUE(m.ok);
    messages_with_templates += m.templates;
    for (const auto& f : m.flows) third += f.at(8)[3] >= 200;  // source 10.0.0.i
  }
  close(rx);
  EXPECT_EQ(third, 10u);
  EXPECT_GE(messages_with_templates, 1u);
  EXPECT_GE(ex.stats().template_sends, 3u);
}

TEST(IpfixExporter, ModelSwapThatChangesTheClassesResendsTheNames) {
  uint16_t port = 0;
  const int rx = udp_receiver(&port);
  ExportConfig c;
  c.port = port;
  c.template_refresh_s = 3600;
  IpfixExporter ex(c, 1);
  ex.publish(1, "m1", {"VoIP"});
  ex.start();
  ex.push_wait(0, flow_msg(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ex.publish(2, "m2", {"VoIP", "Gaming"});
  auto m = flow_msg(1);
  m.cls = 1;
  m.model_tag = 2;
  ex.push_wait(0, m);
  ex.finish();
  Decoder dec;
  std::vector<std::string> names;
  std::string model;
  for (const auto& d : drain_udp(rx)) {
    const Message msg = dec.decode(d.data(), d.size());
    for (const auto& o : msg.options) names.emplace_back(reinterpret_cast<const char*>(o.at(96).data()));
    for (const auto& f : msg.flows)
      if (f.at(95)[1] == 2) model.assign(f.at(ipfix::kIeModelId, ipfix::kPen).begin(), f.at(ipfix::kIeModelId, ipfix::kPen).end());
  }
  close(rx);
  EXPECT_EQ(names, (std::vector<std::string>{"unclassified", "VoIP", "unclassified", "VoIP", "Gaming"}));
  EXPECT_EQ(model, "m2");
}

TEST(IpfixExporter, TcpReconnectsAndKeepsSequenceNumbersRight) {
  uint16_t port = 0;
  const int lfd = tcp_listener(&port);
  ASSERT_GE(lfd, 0);
  ExportConfig c;
  c.port = port;
  c.transport = ExportConfig::Transport::kTcp;
  c.buffer_records = 1u << 20;
  IpfixExporter ex(c, 1);
  ex.publish(1, "m1", {"VoIP"});
  constexpr uint32_t kN = 20000;
  Decoder dec;
  TcpConn c1, c2;
  std::thread collector([&] {
    c1 = read_conn(lfd, dec, 2000);  // hangs up after 2000 records
    c2 = read_conn(lfd, dec, ~0ull);
  });
  ex.start();
  for (uint32_t i = 0; i < kN; ++i) {
    ex.push_wait(0, flow_msg(i));
    if (i % 1000 == 999) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ex.finish();
  collector.join();
  close(lfd);
  const ExportStats st = ex.stats();
  ASSERT_FALSE(c1.msgs.empty());
  ASSERT_FALSE(c2.msgs.empty());
  EXPECT_TRUE(c1.msgs.front().templates);  // every connection starts with the templates
  EXPECT_TRUE(c2.msgs.front().templates);
  EXPECT_GE(st.reconnects, 1u);
  // Within a connection the numbers run on exactly; across the reconnect they jump by what the
  // dead connection swallowed (sent into its socket, never read).
  uint64_t seq_end = 0, lost_in_cut = 0;
  for (const TcpConn* conn : {&c1, &c2}) {
    for (std::size_t i = 0; i < conn->msgs.size(); ++i) {
      const Message& m = conn->msgs[i];
      if (i > 0) {
        EXPECT_EQ(m.seq, static_cast<uint32_t>(seq_end));
      } else {
        EXPECT_GE(m.seq, static_cast<uint32_t>(seq_end));
        lost_in_cut += m.seq - seq_end;
      }
      seq_end = m.seq + m.flows.size() + m.options.size();
    }
  }
  EXPECT_EQ(seq_end, st.flow_records + st.options_records);
  // Every record: received, swallowed by the cut (seen in the sequence numbers) or counted.
  EXPECT_EQ(c1.flows + c2.flows + lost_in_cut + st.records_dropped_buffer, kN)
      << "c1 " << c1.flows << " c2 " << c2.flows << " cut " << lost_in_cut;
}

TEST(IpfixExporter, TcpCollectorDownBuffersUpToTheBoundThenDropsAndCounts) {
  uint16_t port = 0;
  int probe = tcp_listener(&port);
  close(probe);  // nothing listens there now
  ExportConfig c;
  c.port = port;
  c.transport = ExportConfig::Transport::kTcp;
  c.buffer_records = 300;
  IpfixExporter ex(c, 1);
  ex.publish(1, "m1", {"VoIP"});
  ex.start();
  constexpr uint32_t kN = 1000;
  for (uint32_t i = 0; i < kN; ++i) ex.push_wait(0, flow_msg(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // sealed into the bounded buffer
  EXPECT_EQ(ex.stats().connected, 0u);
  const ExportStats before = ex.stats();
  EXPECT_LE(before.records_buffered, 300u);
  EXPECT_GT(before.records_dropped_buffer, 0u);
  // The collector comes up: what was buffered arrives.
  const int lfd = tcp_listener(&port);
  ASSERT_GE(lfd, 0);
  Decoder dec;
  TcpConn conn;
  std::thread collector([&] { conn = read_conn(lfd, dec, ~0ull); });
  std::this_thread::sleep_for(std::chrono::milliseconds(6000));  // backoff is at most 5 s
  ex.finish();
  collector.join();
  close(lfd);
  const ExportStats st = ex.stats();
  EXPECT_EQ(conn.flows + st.records_dropped_buffer, kN);
  EXPECT_EQ(conn.flows, before.records_buffered);
}
