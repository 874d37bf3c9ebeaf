// /flowpic/ telemetry commands in a real (minimal) EAL, read by DPDK's own dpdk-telemetry.py.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <set>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>
#include <rte_eal.h>

#include "ctl/control_server.hpp"
#include "ctl/telemetry.hpp"
#include "ctl_test_util.hpp"

using nlohmann::json;
using namespace flowpic;

namespace {

const char* kScript = "/usr/bin/dpdk-telemetry.py";
std::string g_prefix;
bool g_eal_ok = false;

class TelemetryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_prefix = "flowpic-ctl-tel-" + std::to_string(::getpid());
    std::vector<std::string> args = {"ctl_telemetry_test", "--no-huge", "-m", "64", "--no-pci",
                                     "--file-prefix", g_prefix, "--log-level", "lib.eal:error"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    g_eal_ok = rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
  }
  static void TearDownTestSuite() {
    if (!g_eal_ok) return;
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    // EAL leaves its runtime directory (config, telemetry socket) behind: ours is unique, drop it.
    if (runtime_dir.find(g_prefix) != std::string::npos) std::filesystem::remove_all(runtime_dir);
  }
  void SetUp() override {
    ASSERT_TRUE(g_eal_ok) << "rte_eal_init failed (--no-huge -m 64 --no-pci)";
    if (::access(kScript, X_OK) != 0 && ::access(kScript, R_OK) != 0)
      GTEST_SKIP() << kScript << " missing (Debian package dpdk)";
  }
  // Sends each command through dpdk-telemetry.py (stdin, non-interactive: one JSON reply per
  // line on stdout) and returns the replies.
  std::vector<json> query(const std::vector<std::string>& cmds) {
    std::string input;
    for (const auto& c : cmds) input += c + "\n";
    ctltest::RunResult r = ctltest::run("/usr/bin/python3", {kScript, "-f", g_prefix}, "", {}, input);
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<json> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
      out.push_back(j);
    }
    EXPECT_EQ(out.size(), cmds.size()) << r.out << r.err;
    if (std::getenv("SHOW_TELEMETRY")) std::cerr << r.out;
    return out;
  }
};

TEST_F(TelemetryTest, CustomSourceConvertedWithinLimits) {
  json doc = {{"name", "p0"}, {"rx", {{"packets", 12345678901234ULL}, {"bytes", 7}}},
              {"delta", -5}, {"ratio", 0.25}, {"up", true}, {"nothing", nullptr},
              {"queues", {0, 1, 2}}, {"classes", {"VoIP", "Video"}},
              {"lcores", {{{"lcore", 1}, {"rx", 10}}, {{"lcore", 2}, {"rx", 20}}}},
              {"bad key-name", "say \"hi\"\\"}};
  std::string err;
  ASSERT_TRUE(register_telemetry_command("/flowpic/test", [doc](const std::string& p) {
    json d = doc;
    d["params"] = p;
    return d;
  }, "test source", &err)) << err;
  EXPECT_FALSE(register_telemetry_command("/other/x", nullptr, "", &err));
  EXPECT_NE(err.find("must start with /flowpic/"), std::string::npos);
  EXPECT_FALSE(register_telemetry_command("/flowpic/bad-name", nullptr, "", &err));

  std::vector<json> r = query({"/flowpic/test,abc", "/"});
  ASSERT_EQ(r.size(), 2u);
  const json& t = r[0]["/flowpic/test"];
  EXPECT_EQ(t["name"], "p0");
  EXPECT_EQ(t["rx/packets"], 12345678901234ULL);
  EXPECT_EQ(t["rx/bytes"], 7);
  EXPECT_EQ(t["delta"], -5);
  EXPECT_EQ(t["ratio"], "0.25");
  EXPECT_EQ(t["up"], 1);
  EXPECT_EQ(t["nothing"], "null");
  EXPECT_EQ(t["queues"], json({0, 1, 2}));
  EXPECT_EQ(t["classes"], json({"VoIP", "Video"}));
  EXPECT_EQ(t["lcores/1/rx"], 20);
  EXPECT_EQ(t["bad_key_name"], "say _hi__");
  EXPECT_EQ(t["params"], "abc");
  bool listed = false;
  for (const auto& c : r[1]["/"]) listed = listed || c == "/flowpic/test";
  EXPECT_TRUE(listed) << r[1].dump();

  // Past 256 dict entries the reply is cut with a count of what was left out.
  json big = json::object();
  for (int i = 0; i < 300; ++i) big["k" + std::to_string(i)] = i;
  ASSERT_TRUE(register_telemetry_command("/flowpic/big", [big](const std::string&) { return big; }, "big", &err));
  r = query({"/flowpic/big"});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]["/flowpic/big"].size(), 256u);
  EXPECT_EQ(r[0]["/flowpic/big"]["truncated"], 45);

  // A throwing source answers an error; a cleared one too (state gone), the app keeps running.
  ASSERT_TRUE(register_telemetry_command("/flowpic/test", [](const std::string&) -> json {
    throw std::runtime_error("no snapshot yet");
  }, "test source", &err));
  r = query({"/flowpic/test"});
  EXPECT_EQ(r[0]["/flowpic/test"]["error"], "no snapshot yet");
}

TEST_F(TelemetryTest, ControlCommandsThroughDpdkTelemetry) {
  ControlServerConfig cfg;
  cfg.socket_path = "/tmp/flowpic-ctl-tel-" + std::to_string(::getpid()) + ".sock";
  ControlServer server(cfg);  // not started: telemetry goes through dispatch()
  uint64_t rx = 100;
  server.handle("status", [](const json&) {
    return json{{"version", "0.1.0"}, {"uptime_s", 1.5}, {"clock", "tsc"},
                {"model", {{"id", "m1"}, {"classes", {"VoIP", "Video"}}}}};
  });
  server.handle("stats", [&rx](const json&) {
    rx += 10;
    return json{{"ports", {{{"name", "p0"}, {"rx", {{"packets", rx}}}}}}, {"classes", {{"VoIP", 3}}}};
  });
  server.handle("model.show", [](const json&) { return json{{"current", {{"id", "m1"}}}, {"previous", nullptr}}; });
  server.handle("flows.top", [](const json& a) {
    json flows = json::array();
    for (int i = 0; i < a.at("n").get<int>(); ++i)
      flows.push_back({{"flow", "udp 10.0.0.1:" + std::to_string(1000 + i) + " -> 10.0.0.2:53"}, {"packets", 10 - i}});
    return json{{"flows", flows}};
  });
  std::string err;
  ASSERT_TRUE(register_control_telemetry(server, &err)) << err;

  std::vector<json> r = query({"/", "/flowpic/status", "/flowpic/stats", "/flowpic/stats,ports/0",
                               "/flowpic/stats,classes", "/flowpic/model", "/flowpic/flows,2", "/flowpic/flows,x"});
  ASSERT_EQ(r.size(), 8u);
  std::set<std::string> cmds;
  for (const auto& c : r[0]["/"]) cmds.insert(c.get<std::string>());
  for (const char* c : {"/flowpic/status", "/flowpic/stats", "/flowpic/model", "/flowpic/flows"})
    EXPECT_TRUE(cmds.count(c)) << c << " not listed: " << r[0].dump();
  EXPECT_EQ(r[1]["/flowpic/status"]["model/id"], "m1");
  EXPECT_EQ(r[1]["/flowpic/status"]["model/classes"], json({"VoIP", "Video"}));
  EXPECT_EQ(r[1]["/flowpic/status"]["uptime_s"], "1.5");
  EXPECT_EQ(r[2]["/flowpic/stats"]["ports/0/rx/packets"], 110);
  EXPECT_EQ(r[2]["/flowpic/stats"]["classes/VoIP"], 3);
  EXPECT_EQ(r[3]["/flowpic/stats"]["rx/packets"], 120);  // a fresh snapshot, subtree ports/0
  EXPECT_EQ(r[3]["/flowpic/stats"]["name"], "p0");
  EXPECT_EQ(r[4]["/flowpic/stats"]["VoIP"], 3);
  EXPECT_EQ(r[5]["/flowpic/model"]["current/id"], "m1");
  EXPECT_EQ(r[6]["/flowpic/flows"]["flows/1/flow"], "udp 10.0.0.1:1001 -> 10.0.0.2:53");
  EXPECT_FALSE(r[6]["/flowpic/flows"].contains("flows/2/flow"));
  EXPECT_EQ(r[7]["/flowpic/flows"]["error"], "parameter must be a number of flows");

  // Before the state behind the sources goes away: every /flowpic/ command answers an error.
  clear_telemetry_sources();
  r = query({"/flowpic/stats"});
  EXPECT_EQ(r[0]["/flowpic/stats"]["error"], "flowpic telemetry is not available (appliance stopping)");
}

}  // namespace

namespace {
// Issue 16: SIGTERM with telemetry requests in flight was a use-after-free (the source, copied out
// of the registry, ran on a ControlServer already deleted). clear_telemetry_sources() must return
// only once every call in flight has returned, so what the sources point to can then be freed.
TEST_F(TelemetryTest, ClearWaitsForCallsInFlight) {
  std::atomic<bool> entered{false}, finished{false};
  auto state = std::make_shared<int>(7);
  std::string err;
  ASSERT_TRUE(register_telemetry_command("/flowpic/slow", [&, state](const std::string&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    finished = true;
    return json{{"value", *state}};
  }, "slow source", &err)) << err;
  std::thread client([&] { query({"/flowpic/slow"}); });
  for (int i = 0; i < 500 && !entered; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(entered) << "the telemetry call never reached the source";
  clear_telemetry_sources();
  EXPECT_TRUE(finished) << "clear returned while a source was still running";
  client.join();
  const std::vector<json> r = query({"/flowpic/slow"});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NE(r[0]["/flowpic/slow"].value("error", "").find("not available"), std::string::npos) << r[0].dump();
}
}  // namespace
