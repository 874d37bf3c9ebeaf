// The Prometheus endpoint scraped over loopback TCP, every line checked by a strict parser of
// the text exposition format 0.0.4 written here (names, label syntax and escapes, values,
// HELP/TYPE before samples, contiguous families, no duplicate series).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "ctl/prometheus.hpp"
#include "prom_text.hpp"

using nlohmann::json;
using namespace flowpic;
using namespace promtext;

namespace {

json sample_stats() {
  return json::parse(R"({
    "uptime_s": 12.5,
    "ports": [
      {"name": "p0", "port_id": 0, "rx": {"packets": 1000, "bytes": 64000},
       "tx": {"packets": 990, "bytes": 63360}, "dropped": {"action": 10, "tx_full": 0}},
      {"name": "p1", "port_id": 1, "rx": {"packets": 5, "bytes": 320},
       "tx": {"packets": 5, "bytes": 320}, "dropped": {"action": 0, "tx_full": 0}}],
    "lcores": [
      {"lcore": 1, "port": "p0", "queue": 0, "rx": {"packets": 600, "bytes": 38400}, "non_ip": 2,
       "flows": {"active": 40, "created": 100, "expired": 60}, "windows": {"closed": 30, "dropped": {"ring_full": 1}}},
      {"lcore": 2, "port": "p0", "queue": 1, "rx": {"packets": 400, "bytes": 25600}, "non_ip": 0,
       "flows": {"active": 20, "created": 50, "expired": 30}, "windows": {"closed": 20, "dropped": {"ring_full": 0}}}],
    "stages": {
      "windows": {"closed": 50, "too_small": 7, "dropped": {"ring_full": 1}},
      "inference": {"batches": 3, "pictures": 43, "queue_depth": 2, "latency_us": {"p50": 150, "p99": 2400}}},
    "classes": {"VoIP": 20, "Video": 23, "File \"Transfer\"": 0},
    "outputs": {"verdicts": {"lines": 40, "dropped": 3, "write_errors": 1}}
  })");
}

json sample_status() {
  return json::parse(R"({"version": "0.1.0", "uptime_s": 12.5, "clock": "trace",
    "model": {"id": "ode-lenet-1", "classes": ["VoIP", "Video"], "arch": "lenet"}})");
}

TEST(PrometheusRender, SnapshotMetricsAreValidAndCorrect) {
  const std::string text = render_prometheus(metrics_from_snapshots(sample_stats(), sample_status()));
  const Exposition e = parse_exposition(text);
  ASSERT_FALSE(HasFailure()) << text;

  auto value = [&](const std::string& n, const std::map<std::string, std::string>& l) {
    const Sample* s = e.find(n, l);
    EXPECT_NE(s, nullptr) << n << " missing in\n" << text;
    return s ? s->value : NAN;
  };
  EXPECT_EQ(e.type.at("flowpic_port_rx_packets_total"), "counter");
  EXPECT_EQ(value("flowpic_port_rx_packets_total", {{"port", "p0"}}), 1000);
  EXPECT_EQ(value("flowpic_port_tx_bytes_total", {{"port", "p1"}}), 320);
  EXPECT_EQ(value("flowpic_port_dropped_packets_total", {{"port", "p0"}, {"reason", "action"}}), 10);
  EXPECT_EQ(value("flowpic_lcore_rx_packets_total", {{"lcore", "2"}}), 400);
  EXPECT_EQ(value("flowpic_lcore_non_ip_total", {{"lcore", "1"}}), 2);
  EXPECT_EQ(e.type.at("flowpic_lcore_flows_active"), "gauge");
  EXPECT_EQ(value("flowpic_lcore_flows_active", {{"lcore", "1"}}), 40);
  EXPECT_EQ(value("flowpic_lcore_windows_dropped_total", {{"lcore", "1"}, {"reason", "ring_full"}}), 1);
  EXPECT_EQ(value("flowpic_windows_too_small_total", {}), 7);
  EXPECT_EQ(value("flowpic_windows_dropped_total", {{"reason", "ring_full"}}), 1);
  EXPECT_EQ(value("flowpic_inference_pictures_total", {}), 43);
  EXPECT_EQ(e.type.at("flowpic_inference_queue_depth"), "gauge");
  // Base units: microseconds become seconds.
  EXPECT_EQ(e.type.at("flowpic_inference_latency_seconds"), "gauge");
  EXPECT_DOUBLE_EQ(value("flowpic_inference_latency_seconds", {{"quantile", "0.99"}}), 0.0024);
  EXPECT_EQ(value("flowpic_verdicts_total", {{"class", "VoIP"}}), 20);
  EXPECT_EQ(value("flowpic_verdicts_total", {{"class", "File \"Transfer\""}}), 0);  // escaped and back
  EXPECT_EQ(value("flowpic_output_lines_total", {{"output", "verdicts"}}), 40);
  EXPECT_EQ(value("flowpic_output_dropped_lines_total", {{"output", "verdicts"}}), 3);
  EXPECT_EQ(value("flowpic_output_write_errors_total", {{"output", "verdicts"}}), 1);
  EXPECT_EQ(value("flowpic_model_info", {{"model", "ode-lenet-1"}, {"classes", "VoIP,Video"}}), 1);
  EXPECT_EQ(value("flowpic_build_info", {{"version", "0.1.0"}}), 1);
  EXPECT_EQ(value("flowpic_uptime_seconds", {}), 12.5);
  for (const Sample& s : e.samples) EXPECT_EQ(s.labels.count("flow"), 0u) << "no per-flow labels";
}

TEST(PrometheusRender, EscapingSanitisingAndMerging) {
  Metric a{"weird-name.with dots", "help with \\ backslash\nand newline", Metric::Type::kCounter, {}};
  a.samples.push_back({{{"path", "C:\\dir \"q\"\nx"}, {"bad-label", "v"}, {"__reserved", "r"}}, 3});
  Metric b{"flowpic_temp", "", Metric::Type::kGauge, {{{}, -1.5}}};
  Metric c{"flowpic_nan", "x", Metric::Type::kGauge, {{{{"k", "1"}}, NAN}, {{{"k", "2"}}, INFINITY}, {{{"k", "3"}}, 1e20}}};
  Metric a2 = a;  // same family again: merged, and its repeated series dropped
  a2.samples.push_back({{{"path", "other"}}, 4});
  const std::string text = render_prometheus({a, b, c, a2});
  const Exposition e = parse_exposition(text);
  ASSERT_FALSE(HasFailure()) << text;
  EXPECT_EQ(e.type.at("weird_name_with_dots_total"), "counter");
  EXPECT_EQ(e.help.at("weird_name_with_dots_total"), "help with \\ backslash\nand newline");
  const Sample* s = e.find("weird_name_with_dots_total", {{"path", "C:\\dir \"q\"\nx"}, {"bad_label", "v"}, {"x__reserved", "r"}});
  ASSERT_NE(s, nullptr) << text;
  EXPECT_EQ(s->value, 3);
  ASSERT_NE(e.find("weird_name_with_dots_total", {{"path", "other"}}), nullptr);
  EXPECT_EQ(e.find("flowpic_temp", {})->value, -1.5);
  EXPECT_TRUE(std::isnan(e.find("flowpic_nan", {{"k", "1"}})->value));
  EXPECT_TRUE(std::isinf(e.find("flowpic_nan", {{"k", "2"}})->value));
  EXPECT_EQ(e.find("flowpic_nan", {{"k", "3"}})->value, 1e20);
  EXPECT_NE(text.find("flowpic_temp -1.5\n"), std::string::npos);
}

// The checker itself must reject broken expositions, or the tests above prove nothing.
TEST(PrometheusChecker, RejectsInvalidText) {
  const char* bad[] = {
      "x_total 1\n",                                                // no TYPE
      "# TYPE x gauge\nx{a=\"1\"} one\n",                            // bad value
      "# TYPE x gauge\nx{a=1} 1\n",                                  // unquoted label
      "# TYPE x gauge\nx{a=\"\\t\"} 1\n",                            // bad escape
      "# TYPE x counter\nx 1\n",                                     // counter without _total
      "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx{a=\"b\"} 2\n",    // family not contiguous
      "# TYPE x gauge\nx 1\nx 2\n",                                  // duplicate series
      "# TYPE 1x gauge\n1x 1\n",                                     // bad name
      "# TYPE x gauge\nx 1",                                         // no final newline
  };
  for (const char* t : bad) {
    ::testing::TestPartResultArray failures;
    {
      ::testing::ScopedFakeTestPartResultReporter reporter(
          ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
      parse_exposition(t);
    }
    EXPECT_GT(failures.size(), 0) << "accepted: " << t;
  }
}

// ------------------------------------------------------------------ HTTP over loopback

TEST(PrometheusHttp, ScrapeOverLoopback) {
  std::atomic<int> calls{0};
  PrometheusConfig cfg;
  cfg.enabled = true;
  cfg.port = 0;
  cfg.request_timeout_ms = 500;
  PrometheusServer server(cfg, [&] {
    ++calls;
    json stats = sample_stats();
    stats["ports"][0]["rx"]["packets"] = 1000 + calls.load();
    return metrics_from_snapshots(stats, sample_status());
  });
  server.start();
  ASSERT_TRUE(server.running());
  ASSERT_NE(server.port(), 0);

  for (int i = 1; i <= 2; ++i) {
    HttpResponse r = parse_http(http(server.port(), "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
    const Exposition e = parse_exposition(r.body);
    ASSERT_FALSE(HasFailure()) << r.body;
    EXPECT_EQ(e.find("flowpic_port_rx_packets_total", {{"port", "p0"}})->value, 1000 + i) << "a fresh snapshot per scrape";
    EXPECT_NE(e.find("flowpic_model_info", {{"model", "ode-lenet-1"}, {"classes", "VoIP,Video"}}), nullptr);
  }
  // HTTP/1.0, a query string, HEAD.
  HttpResponse r = parse_http(http(server.port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(r.status, 200);
  r = parse_http(http(server.port(), "HEAD /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
  EXPECT_GT(std::stoul(r.headers["content-length"]), 100u);
  // Elsewhere: 404; other methods: 405; garbage: 400; too big: 431.
  EXPECT_EQ(parse_http(http(server.port(), "GET / HTTP/1.1\r\n\r\n")).status, 404);
  EXPECT_EQ(parse_http(http(server.port(), "GET /metricsx HTTP/1.1\r\n\r\n")).status, 404);
  r = parse_http(http(server.port(), "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "GET, HEAD");
  EXPECT_EQ(parse_http(http(server.port(), "HELLO\r\n\r\n")).status, 400);
  EXPECT_EQ(parse_http(http(server.port(), "GET /metrics SPDY/3\r\n\r\n")).status, 400);
  EXPECT_EQ(parse_http(http(server.port(), "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n")).status, 431);

  // A client that connects and stalls neither blocks a scrape nor stays forever.
  const int stalled = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(server.port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(stalled, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::send(stalled, "GET /met", 8, 0), 8);
  EXPECT_EQ(parse_http(http(server.port(), "GET /metrics HTTP/1.1\r\n\r\n", 1000)).status, 200);
  pollfd p{stalled, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 3000), 1) << "stalled client not dropped";
  char b[16];
  EXPECT_LE(::recv(stalled, b, sizeof b, 0), 0);
  ::close(stalled);
  EXPECT_EQ(server.scrapes(), 5u);  // 2 GET, HTTP/1.0, HEAD, the one beside the stalled client

  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(http(server.port(), "GET /metrics HTTP/1.1\r\n\r\n"), "");
}

TEST(PrometheusHttp, CollectorFailureIs500AndServerSurvives) {
  bool fail = true;
  PrometheusConfig cfg;
  cfg.enabled = true;
  cfg.port = 0;
  PrometheusServer server(cfg, [&]() -> std::vector<Metric> {
    if (fail) throw std::runtime_error("snapshot unavailable");
    return {model_info_metric("m", {"a"})};
  });
  server.start();
  HttpResponse r = parse_http(http(server.port(), "GET /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("snapshot unavailable"), std::string::npos);
  fail = false;
  r = parse_http(http(server.port(), "GET /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "# HELP flowpic_model_info The model serving verdicts (always 1).\n"
                    "# TYPE flowpic_model_info gauge\n"
                    "flowpic_model_info{classes=\"a\",model=\"m\"} 1\n");
}

TEST(PrometheusHttp, OffByDefaultAndClearErrors) {
  PrometheusServer off(PrometheusConfig{}, [] { return std::vector<Metric>{}; });
  off.start();
  EXPECT_FALSE(off.running());

  PrometheusConfig cfg;
  cfg.enabled = true;
  cfg.address = "localhost";  // not numeric: refused with a reason
  PrometheusServer bad(cfg, nullptr);
  try {
    bad.start();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad listen address 'localhost'"), std::string::npos) << e.what();
  }
  cfg.address = "127.0.0.1";
  cfg.port = 0;
  PrometheusServer first(cfg, nullptr);
  first.start();
  cfg.port = first.port();
  PrometheusServer second(cfg, nullptr);
  try {
    second.start();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Address already in use"), std::string::npos) << e.what();
  }
}

}  // namespace
