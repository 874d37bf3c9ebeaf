// ControlServer driven by the real flowpicctl binary (and raw clients for what flowpicctl would
// never send). The fake appliance holds real state: counters a thread keeps moving, a model that
// `model load` replaces by reading and validating a file, flows with known values.
#include <grp.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "common/flow_key.hpp"
#include "ctl/control_server.hpp"
#include "ctl_test_util.hpp"

using nlohmann::json;
using namespace flowpic;
using ctltest::RawClient;
using ctltest::RunResult;

namespace {

std::string ctl_exe() {
  const char* p = std::getenv("FLOWPICCTL");
  return p ? p : "";
}

struct ModelState {
  std::string id, path, arch, loaded_at;
  std::vector<std::string> classes;
  json to_json() const {
    if (id.empty()) return nullptr;
    return {{"id", id}, {"path", path}, {"arch", arch}, {"classes", classes}, {"loaded_at", loaded_at},
            {"picture", {{"resolution", 32}, {"window", "count"}, {"packets", 20}}}};
  }
};

// A stand-in for flowpicd: just enough state to make every command observable.
class FakeAppliance {
 public:
  explicit FakeAppliance(ControlServer& s) {
    current_ = {"ode-lenet-a", "/models/a.fpm", "lenet", "2024-01-01T00:00:00Z",
                {"VoIP", "Video", "File_Transfer", "Chat", "Browsing"}};
    flows_ = {
        {{"flow", "udp 10.0.0.1:5004 -> 10.0.0.2:6000"}, {"class", "VoIP"}, {"confidence", 0.97},
         {"packets", 900}, {"bytes", 180000}, {"window_index", 44}, {"window_packets", 10}, {"lcore", 1}},
        {{"flow", "tcp 10.0.0.3:443 -> 10.0.0.4:51000"}, {"class", "Video"}, {"confidence", 0.88},
         {"packets", 500}, {"bytes", 700000}, {"window_index", 24}, {"window_packets", 20}, {"lcore", 2}},
        {{"flow", "tcp 10.0.0.5:22 -> 10.0.0.6:40000"}, {"class", nullptr}, {"confidence", nullptr},
         {"packets", 7}, {"bytes", 900}, {"window_index", 0}, {"window_packets", 7}, {"lcore", 1}},
    };
    s.handle("status", [this](const json&) { return status(); }, "appliance status");
    s.handle("stats", [this](const json&) { return stats(); }, "counters");
    s.handle("flows.top", [this](const json& a) { return flows_top(a); }, "top flows");
    s.handle("flows.get", [this](const json& a) { return flows_get(a); }, "one flow");
    s.handle("model.show", [this](const json&) { return model_show(); }, "model");
    s.handle_async("model.load", [this](const json& a, const std::atomic<bool>& cancelled) { return model_load(a, cancelled); },
                   "load a model");
    s.handle("model.rollback", [this](const json&) { return model_rollback(); }, "previous model");
    s.handle("outputs.rotate", [this](const json&) {
      ++rotations_;
      return json{{"reopened", {"/var/log/flowpic/verdicts.jsonl"}}};
    }, "reopen outputs");
    s.handle("log.level", log_level_handler, "log level");
    s.handle("boom", [](const json&) -> json { throw std::runtime_error("handler exploded"); });
    ticker_ = std::thread([this] {
      while (!stop_) {
        rx_ += 100;  // 100 packets of 100 bytes every 10 ms: ~10k packets/s
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  ~FakeAppliance() {
    stop_ = true;
    ticker_.join();
  }

  json status() {
    std::lock_guard lk(mu_);
    return {{"version", "9.9.9-test"}, {"uptime_s", 3725.5}, {"clock", "trace"},
            {"ports", {{{"name", "p0"}, {"port_id", 0}, {"driver", "net_pcap"}, {"peer", "p1"}, {"rx_queues", 2}, {"numa", 0}},
                       {{"name", "p1"}, {"port_id", 1}, {"driver", "net_pcap"}, {"peer", "p0"}, {"rx_queues", 2}, {"numa", 0}}}},
            {"lcores", {{{"lcore", 1}, {"role", "poll"}, {"port", "p0"}, {"queue", 0}, {"numa", 0}},
                        {{"lcore", 2}, {"role", "poll"}, {"port", "p0"}, {"queue", 1}, {"numa", 0}}}},
            {"placement", {{"pollers", {1, 2}}, {"builders", {0}}, {"inference", {3}}, {"numa_nodes", 1}}},
            {"model", current_.to_json()}};
  }
  json stats() {
    const uint64_t rx = rx_.load();
    json classes = {{"VoIP", rx / 1000}, {"Video", rx / 2000}};
    return {{"uptime_s", 3725.5},
            {"ports", {{{"name", "p0"}, {"port_id", 0}, {"rx", {{"packets", rx}, {"bytes", rx * 100}}},
                        {"tx", {{"packets", rx - rx / 100}, {"bytes", (rx - rx / 100) * 100}}},
                        {"dropped", {{"action", rx / 100}, {"tx_full", 0}, {"nic_missed", 0}}}},
                       {{"name", "p1"}, {"port_id", 1}, {"rx", {{"packets", 0}, {"bytes", 0}}},
                        {"tx", {{"packets", 0}, {"bytes", 0}}}, {"dropped", {{"action", 0}}}}}},
            {"lcores", {{{"lcore", 1}, {"rx", {{"packets", rx / 2}, {"bytes", rx * 50}}}, {"non_ip", 3},
                         {"flows", {{"active", 2}, {"created", 10}}}},
                        {{"lcore", 2}, {"rx", {{"packets", rx - rx / 2}, {"bytes", rx * 50}}}, {"non_ip", 0},
                         {"flows", {{"active", 1}, {"created", 4}}}}}},
            {"stages", {{"windows", {{"closed", rx / 20}, {"dropped", {{"ring_full", 0}}}}},
                        {"inference", {{"batches", rx / 640}, {"pictures", rx / 20}, {"latency_us", {{"p50", 120}, {"p99", 900}}}}}}},
            {"classes", classes}};
  }
  json flows_top(const json& a) {
    const size_t n = a.value("n", 10);
    const std::string by = a.value("by", std::string("packets"));
    if (by != "packets" && by != "bytes") throw CommandError("bad_request", "by must be packets or bytes");
    std::vector<json> v = flows_;
    std::sort(v.begin(), v.end(), [&](const json& x, const json& y) { return x[by].get<uint64_t>() > y[by].get<uint64_t>(); });
    if (v.size() > n) v.resize(n);
    return {{"flows", v}};
  }
  json flows_get(const json& a) {
    const std::string f = a.at("flow").get<std::string>();
    for (const json& x : flows_)
      if (x["flow"] == f) return {{"flow", x}};
    throw CommandError("not_found", "no flow " + f);
  }
  json model_show() {
    std::lock_guard lk(mu_);
    return {{"current", current_.to_json()}, {"previous", previous_.to_json()}};
  }
  // A "model file" here is JSON {"format":"fake-model","id":...,"arch":...,"classes":[...]}; with
  // "stall": true, reading it takes until release_stall() (or until the request is cancelled),
  // like a huge file on a slow disk. Read and checked in the prepare step, applied in the commit.
  ControlServer::Commit model_load(const json& a, const std::atomic<bool>& cancelled) {
    const std::string path = a.at("path").get<std::string>();
    last_load_path_ = path;
    std::ifstream in(path);
    if (!in) throw CommandError("model_unreadable", "cannot read model file " + path + ": " + std::strerror(errno));
    json m = json::parse(in, nullptr, false);
    if (m.is_discarded() || !m.is_object() || m.value("format", "") != "fake-model" || !m.contains("id"))
      throw CommandError("model_invalid", "not a model file: " + path);
    if (m.value("stall", false)) {
      ++stalls_;
      while (!release_ && !cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (cancelled) {
        ++cancelled_;
        throw CommandError(ctl_code::kCancelled, "abandoned");
      }
    }
    {
      std::lock_guard lk(mu_);
      if (m["classes"].size() != current_.classes.size())
        throw CommandError("model_incompatible", "model has " + std::to_string(m["classes"].size()) +
                                                     " classes, the running one " + std::to_string(current_.classes.size()));
    }
    return [this, m, path] {
      std::lock_guard lk(mu_);
      previous_ = current_;
      current_ = {m["id"], path, m.value("arch", "lenet"), "2024-01-02T00:00:00Z", m["classes"]};
      return json{{"id", current_.id}, {"previous", previous_.id}, {"applied_from", "next window"}};
    };
  }
  void release_stall() { release_ = true; }
  std::atomic<int> stalls_{0}, cancelled_{0};
  std::atomic<bool> release_{false};
  json model_rollback() {
    std::lock_guard lk(mu_);
    if (previous_.id.empty()) throw CommandError("no_previous", "no previous model to roll back to");
    std::swap(current_, previous_);
    return {{"id", current_.id}, {"previous", previous_.id}};
  }

  std::string current_id() {
    std::lock_guard lk(mu_);
    return current_.id;
  }
  std::atomic<int> rotations_{0};
  std::string last_load_path_;

 private:
  std::mutex mu_;
  ModelState current_, previous_;
  std::vector<json> flows_;
  std::atomic<uint64_t> rx_{1000};
  std::atomic<bool> stop_{false};
  std::thread ticker_;
};

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(ctl_exe().empty()) << "FLOWPICCTL must name the flowpicctl binary (set by meson)";
    dir_ = ctltest::make_temp_dir("flowpic-ctl");
    cfg_.socket_path = dir_ + "/run/flowpicd.sock";  // run/ does not exist yet: start() creates it
    cfg_.request_timeout_ms = 400;
    cfg_.job_timeout_ms = 1500;  // a slow command's deadline (model load)
    server_ = std::make_unique<ControlServer>(cfg_);
    app_ = std::make_unique<FakeAppliance>(*server_);
    server_->start();
  }
  void TearDown() override {
    app_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  RunResult ctl(std::vector<std::string> args, const std::string& cwd = "") {
    args.insert(args.begin(), {"-s", cfg_.socket_path});
    return ctltest::run(ctl_exe(), args, cwd);
  }
  json ctl_json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    RunResult r = ctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  json raw(RawClient& c, const std::string& line) {
    c.send_all(line + "\n");
    const std::string reply = c.read_line(3000);
    json j = json::parse(reply, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "reply: " << reply;
    return j;
  }
  void write_model(const std::string& name, const json& j) { std::ofstream(dir_ + "/" + name) << j.dump(); }

  std::string dir_;
  ControlServerConfig cfg_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<FakeAppliance> app_;
};

TEST_F(ControlTest, StatusHumanAndJson) {
  json j = ctl_json({"status"});
  EXPECT_EQ(j["version"], "9.9.9-test");
  EXPECT_EQ(j["model"]["id"], "ode-lenet-a");
  EXPECT_EQ(j["ports"].size(), 2u);

  RunResult r = ctl({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("flowpicd 9.9.9-test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("up 1h 02m 05s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ode-lenet-a  (lenet, 5 classes: VoIP,Video,File_Transfer,Chat,Browsing)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pollers    1,2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  LCORE  ROLE  PORT  QUEUE  NUMA\n  1      poll  p0        0     0\n"), std::string::npos) << r.out;
  // Ports table: header then one aligned row per port.
  EXPECT_NE(r.out.find("  NAME  PORT ID  DRIVER    NUMA  PEER  RX QUEUES\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  p1          1  net_pcap     0  p0            2\n"), std::string::npos) << r.out;
}

TEST_F(ControlTest, StatsHumanAndJson) {
  json j = ctl_json({"stats"});
  ASSERT_EQ(j["ports"].size(), 2u);
  const uint64_t rx = j["ports"][0]["rx"]["packets"];
  EXPECT_GE(rx, 1000u);
  EXPECT_EQ(j["ports"][0]["tx"]["packets"].get<uint64_t>() + j["ports"][0]["dropped"]["action"].get<uint64_t>(), rx);

  RunResult r = ctl({"stats"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("PORT  RX PKTS  RX BYTES  TX PKTS  TX BYTES  DROPPED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dropped p0: action="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CLASS  VERDICTS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("inference  batches="), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("PKT/S"), std::string::npos) << "no rates without --watch";
}

TEST_F(ControlTest, StatsWatchComputesRates) {
  RunResult r = ctl({"--json", "stats", "--watch", "0.3", "--count", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> lines;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) lines.push_back(json::parse(l));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[0].contains("rates"));
  for (int i = 1; i < 3; ++i) {
    const json& rates = lines[i]["rates"];
    const double dt = rates["interval_s"];
    EXPECT_GE(dt, 0.29);  // polls are paced from the start of the previous one
    EXPECT_LT(dt, 2.0);
    const double expect = (lines[i]["ports"][0]["rx"]["packets"].get<double>() -
                           lines[i - 1]["ports"][0]["rx"]["packets"].get<double>()) / dt;
    EXPECT_GT(expect, 1000);  // the ticker adds ~10k packets/s
    EXPECT_NEAR(rates["ports"][0]["rx_packets_per_s"].get<double>(), expect, 1e-6);
    EXPECT_NEAR(rates["ports"][0]["rx_bits_per_s"].get<double>(), expect * 800, 1e-3);
    EXPECT_EQ(rates["ports"][1]["rx_packets_per_s"].get<double>(), 0.0);
  }
  RunResult h = ctl({"stats", "--watch", "0.2", "--count", "2"});
  ASSERT_EQ(h.code, 0) << h.err;
  EXPECT_NE(h.out.find("RX PKT/S"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("(rates from the next poll)"), std::string::npos) << h.out;
}

TEST_F(ControlTest, FlowsTopAndGet) {
  json j = ctl_json({"flows", "top", "-n", "2", "--by", "bytes"});
  ASSERT_EQ(j["flows"].size(), 2u);
  EXPECT_EQ(j["flows"][0]["flow"], "tcp 10.0.0.3:443 -> 10.0.0.4:51000");
  EXPECT_EQ(j["flows"][1]["flow"], "udp 10.0.0.1:5004 -> 10.0.0.2:6000");
  j = ctl_json({"flows", "top"});
  ASSERT_EQ(j["flows"].size(), 3u);
  EXPECT_EQ(j["flows"][0]["class"], "VoIP");  // by packets

  RunResult r = ctl({"flows", "top"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("FLOW                                CLASS   CONF  PACKETS   BYTES  WINDOW  WIN PKTS  LCORE\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("udp 10.0.0.1:5004 -> 10.0.0.2:6000  VoIP   0.970      900  180000      44        10      1"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tcp 10.0.0.5:22 -> 10.0.0.6:40000   -          -        7     900       0         7      1\n"), std::string::npos) << r.out;

  // flowpicctl canonicalises what it parsed: a numeric protocol finds the same flow.
  j = ctl_json({"flows", "get", "17 10.0.0.1:5004 -> 10.0.0.2:6000"});
  EXPECT_EQ(j["flow"]["class"], "VoIP");
  r = ctl({"flows", "get", "udp 10.0.0.1:5004 -> 10.0.0.2:6000"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("window_packets  10"), std::string::npos) << r.out;

  r = ctl({"flows", "get", "udp 9.9.9.9:1 -> 8.8.8.8:2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no flow udp 9.9.9.9:1 -> 8.8.8.8:2 [not_found]"), std::string::npos) << r.err;

  const uint64_t before = server_->stats().requests;
  r = ctl({"flows", "get", "udp 1.2.3.4 -> 5.6.7.8:9"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad flow"), std::string::npos) << r.err;
  EXPECT_EQ(server_->stats().requests, before) << "a bad 5-tuple must not reach the appliance";
}

TEST_F(ControlTest, ModelLoadShowRollback) {
  const json classes = {"VoIP", "Video", "File_Transfer", "Chat", "Browsing"};
  write_model("b.json", {{"format", "fake-model"}, {"id", "ode-lenet-b"}, {"classes", classes}});
  write_model("three.json", {{"format", "fake-model"}, {"id", "three"}, {"classes", {"a", "b", "c"}}});
  std::ofstream(dir_ + "/corrupt.json") << "{\"format\": \"fake-mo";

  json j = ctl_json({"model", "show"});
  EXPECT_EQ(j["current"]["id"], "ode-lenet-a");
  EXPECT_TRUE(j["previous"].is_null());

  // Relative path: flowpicctl sends it absolute, resolved against its own cwd.
  RunResult r = ctl({"model", "load", "b.json"}, dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "loaded model ode-lenet-b (previous ode-lenet-a), applied from the next window\n");
  EXPECT_EQ(app_->last_load_path_, dir_ + "/b.json");
  EXPECT_EQ(app_->current_id(), "ode-lenet-b");

  r = ctl({"model", "show"});
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("current   ode-lenet-b  (lenet, 5 classes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("previous  ode-lenet-a"), std::string::npos) << r.out;

  // Refusals leave the model serving.
  for (const auto& [file, code] : std::vector<std::pair<std::string, std::string>>{
           {"missing.json", "model_unreadable"}, {"corrupt.json", "model_invalid"}, {"three.json", "model_incompatible"}}) {
    r = ctl({"--json", "model", "load", dir_ + "/" + file});
    EXPECT_EQ(r.code, 1) << file;
    json e = json::parse(r.out);
    EXPECT_FALSE(e["ok"].get<bool>());
    EXPECT_EQ(e["code"], code);
    EXPECT_NE(r.err.find(code), std::string::npos) << r.err;
    EXPECT_EQ(app_->current_id(), "ode-lenet-b") << file;
  }
  r = ctl({"model", "load", dir_ + "/missing.json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot read model file " + dir_ + "/missing.json: No such file or directory"), std::string::npos) << r.err;

  r = ctl({"model", "rollback"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "rolled back to model ode-lenet-a (retired ode-lenet-b)\n");
  j = ctl_json({"model", "show"});
  EXPECT_EQ(j["current"]["id"], "ode-lenet-a");
  EXPECT_EQ(j["previous"]["id"], "ode-lenet-b");
  j = ctl_json({"model", "rollback"});
  EXPECT_EQ(j["id"], "ode-lenet-b");
}

// Names come from model files: a control character in them must not reach the terminal raw
// (issue 17): flowpicctl prints it as \xNN, and --json keeps the exact name.
TEST_F(ControlTest, ControlCharactersInNamesAreEscaped) {
  const std::string evil_id = "evil\x1b[2J\nid";
  write_model("evil.json", {{"format", "fake-model"}, {"id", evil_id},
                            {"classes", {"VoIP\rX", "Video", "File_Transfer", "Chat", "Browsing"}}});
  RunResult r = ctl({"model", "load", dir_ + "/evil.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("loaded model evil\\x1b[2J\\x0aid (previous"), std::string::npos) << r.out;
  r = ctl({"model", "show"});
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("VoIP\\x0dX,Video"), std::string::npos) << r.out;
  for (const auto& out : {r.out, ctl({"status"}).out}) {
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
    EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  }
  EXPECT_EQ(ctl_json({"model", "show"})["current"]["id"], evil_id);
}

// Issue 17: a slow `model load` (a huge file, a slow disk) runs off the control thread. While it
// reads, other requests are answered; a second load gets "busy"; the reply reaches its client
// when the load is done, and only then does the model change.
TEST_F(ControlTest, SlowModelLoadLeavesOtherRequestsAnswered) {
  const json classes = {"VoIP", "Video", "File_Transfer", "Chat", "Browsing"};
  write_model("slow.json", {{"format", "fake-model"}, {"id", "slow-b"}, {"classes", classes}, {"stall", true}});
  RawClient loader(cfg_.socket_path);
  ASSERT_TRUE(loader.ok());
  loader.send_all(json{{"cmd", "model.load"}, {"args", {{"path", dir_ + "/slow.json"}}}}.dump() + "\n");
  for (int i = 0; i < 500 && app_->stalls_ == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(app_->stalls_, 1);
  // Meanwhile: status and model show are answered at once, from the old model.
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = ctl({"status"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  EXPECT_EQ(ctl_json({"model", "show"})["current"]["id"], "ode-lenet-a");
  // A second load while the first reads: busy, and nothing else changes.
  r = ctl({"--json", "model", "load", dir_ + "/slow.json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(json::parse(r.out, nullptr, false).value("code", ""), "busy") << r.out;
  EXPECT_EQ(loader.read_line(50), "") << "no reply before the load is done";
  app_->release_stall();
  const json reply = json::parse(loader.read_line(3000), nullptr, false);
  ASSERT_TRUE(reply.is_object());
  EXPECT_TRUE(reply.value("ok", false)) << reply.dump();
  EXPECT_EQ(reply["result"]["id"], "slow-b");
  EXPECT_EQ(app_->current_id(), "slow-b");
}

// A load whose client goes away (flowpicctl timed out, ^C) is abandoned: its model is never
// applied, and the next load runs. Stopping the server does not wait for a stalled load either.
TEST_F(ControlTest, AbandonedModelLoadChangesNothingAndStopDoesNotWait) {
  const json classes = {"VoIP", "Video", "File_Transfer", "Chat", "Browsing"};
  write_model("slow.json", {{"format", "fake-model"}, {"id", "slow-b"}, {"classes", classes}, {"stall", true}});
  write_model("b.json", {{"format", "fake-model"}, {"id", "ode-lenet-b"}, {"classes", classes}});
  {
    RunResult r = ctl({"--timeout", "300", "model", "load", dir_ + "/slow.json"});
    EXPECT_EQ(r.code, 4) << "flowpicctl times out: " << r.err;
  }
  for (int i = 0; i < 1000 && app_->cancelled_ == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(app_->cancelled_, 1) << "the server did not abandon the load of a client that left";
  EXPECT_EQ(app_->current_id(), "ode-lenet-a");
  // The server is free for the next load.
  RunResult r = ctl({"model", "load", dir_ + "/b.json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(app_->current_id(), "ode-lenet-b");

  // The server's own deadline for a slow command (job_timeout_ms, 1.5 s here) passes: the client
  // is told, the load is abandoned, nothing changes.
  {
    RawClient c(cfg_.socket_path);
    c.send_all(json{{"cmd", "model.load"}, {"args", {{"path", dir_ + "/slow.json"}}}}.dump() + "\n");
    const json reply = json::parse(c.read_line(5000), nullptr, false);
    ASSERT_TRUE(reply.is_object());
    EXPECT_EQ(reply.value("code", ""), "timeout") << reply.dump();
    EXPECT_NE(reply.value("error", "").find("nothing changed"), std::string::npos) << reply.dump();
  }
  for (int i = 0; i < 1000 && app_->cancelled_ < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(app_->cancelled_, 2);
  EXPECT_EQ(app_->current_id(), "ode-lenet-b");
  {
    RawClient c(cfg_.socket_path);
    c.send_all(json{{"cmd", "model.load"}, {"args", {{"path", dir_ + "/slow.json"}}}}.dump() + "\n");
    for (int i = 0; i < 500 && app_->stalls_ < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(app_->stalls_, 3);
    // Stop while it stalls (SIGTERM in flowpicd): stop() returns once the load sees it was abandoned.
    const auto t0 = std::chrono::steady_clock::now();
    server_->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  }
  EXPECT_EQ(app_->cancelled_, 3);
  EXPECT_EQ(app_->current_id(), "ode-lenet-b");
}

TEST_F(ControlTest, OutputsRotateAndLogLevel) {
  RunResult r = ctl({"outputs", "rotate"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "reopened 1 output file(s): /var/log/flowpic/verdicts.jsonl\n");
  json j = ctl_json({"outputs", "rotate"});
  EXPECT_EQ(j["reopened"][0], "/var/log/flowpic/verdicts.jsonl");
  EXPECT_EQ(app_->rotations_.load(), 2);

  spdlog::set_level(spdlog::level::info);
  r = ctl({"log-level", "debug"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "log level info -> debug\n");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::debug);
  j = ctl_json({"log-level", "warn"});
  EXPECT_EQ(j["previous"], "debug");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  r = ctl({"log-level", "loud"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  // The server refuses it too (for clients other than flowpicctl).
  RawClient c(cfg_.socket_path);
  json e = raw(c, R"({"cmd":"log.level","args":{"level":"loud"}})");
  EXPECT_EQ(e["code"], "bad_request");
  spdlog::set_level(spdlog::level::info);
}

TEST_F(ControlTest, ExitCodes) {
  // 2: usage
  EXPECT_EQ(ctl({}).code, 2);
  EXPECT_EQ(ctl({"frobnicate"}).code, 2);
  EXPECT_EQ(ctl({"flows", "top", "--by", "colour"}).code, 2);
  EXPECT_EQ(ctl({"model", "load"}).code, 2);
  RunResult help = ctl({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
  // 3: nothing there / nobody listening (a stale socket file)
  RunResult r = ctltest::run(ctl_exe(), {"-s", dir_ + "/nope.sock", "status"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("cannot connect to " + dir_ + "/nope.sock: No such file or directory"), std::string::npos) << r.err;
  {
    const std::string stale = dir_ + "/stale.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, stale.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);  // file stays, nobody listens
    r = ctltest::run(ctl_exe(), {"-s", stale, "--json", "status"});
    EXPECT_EQ(r.code, 3);
    EXPECT_EQ(json::parse(r.out)["code"], "connect");
  }
  // FLOWPIC_SOCKET is the default path; -s wins over it.
  r = ctltest::run(ctl_exe(), {"--json", "status"}, "", {{"FLOWPIC_SOCKET", cfg_.socket_path}});
  EXPECT_EQ(r.code, 0) << r.err;
  r = ctltest::run(ctl_exe(), {"-s", dir_ + "/nope.sock", "status"}, "", {{"FLOWPIC_SOCKET", cfg_.socket_path}});
  EXPECT_EQ(r.code, 3);
  // 4: a listener that accepts nothing and never answers.
  {
    const std::string mute = dir_ + "/mute.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, mute.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 8), 0);
    const auto t0 = std::chrono::steady_clock::now();
    r = ctltest::run(ctl_exe(), {"-s", mute, "--timeout", "300", "status"});
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.code, 4) << r.err;
    EXPECT_NE(r.err.find("timed out after 300 ms waiting for the reply"), std::string::npos) << r.err;
    EXPECT_LT(secs, 5.0);
    ::close(fd);
  }
  // 1: refused by the appliance (handler error), the server stays up.
  r = ctl({"flows", "get", "udp 9.9.9.9:1 -> 8.8.8.8:2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(ctl({"status"}).code, 0);
}

TEST_F(ControlTest, BadRequestsGetErrorRepliesAndServerSurvives) {
  RawClient c(cfg_.socket_path);
  ASSERT_TRUE(c.ok());
  json e = raw(c, R"({"cmd":"reboot"})");
  EXPECT_FALSE(e["ok"].get<bool>());
  EXPECT_EQ(e["code"], "unknown_command");
  EXPECT_NE(e["error"].get<std::string>().find("reboot"), std::string::npos);
  // Garbled JSON and malformed requests: error replies, and the connection stays usable.
  EXPECT_EQ(raw(c, R"({"cmd": "status", )")["code"], "bad_request");
  EXPECT_EQ(raw(c, "\x01\x02\xff\xfe")["code"], "bad_request");
  EXPECT_EQ(raw(c, R"(["status"])")["code"], "bad_request");
  EXPECT_EQ(raw(c, R"({"command":"status"})")["code"], "bad_request");
  EXPECT_EQ(raw(c, R"({"cmd":"status","args":[1,2]})")["code"], "bad_request");
  EXPECT_EQ(raw(c, R"({"cmd":"flows.get","args":{"flow":42}})")["code"], "bad_request");
  json boom = raw(c, R"({"cmd":"boom"})");
  EXPECT_EQ(boom["code"], "failed");
  EXPECT_EQ(boom["error"], "handler exploded");
  json ok = raw(c, R"({"cmd":"status","id":7})");
  EXPECT_TRUE(ok["ok"].get<bool>());
  EXPECT_EQ(ok["id"], 7);
  EXPECT_EQ(ok["result"]["version"], "9.9.9-test");
  // Pipelined requests are answered in order.
  c.send_all("{\"cmd\":\"model.show\",\"id\":1}\n{\"cmd\":\"nope\",\"id\":2}\n{\"cmd\":\"help\",\"id\":3}\n");
  json a = json::parse(c.read_line(2000)), b = json::parse(c.read_line(2000)), h = json::parse(c.read_line(2000));
  EXPECT_EQ(a["id"], 1);
  EXPECT_TRUE(a["ok"].get<bool>());
  EXPECT_EQ(b["id"], 2);
  EXPECT_EQ(b["code"], "unknown_command");
  EXPECT_EQ(h["id"], 3);
  EXPECT_GE(h["result"]["commands"].size(), 9u);
  EXPECT_EQ(ctl({"status"}).code, 0);
}

TEST_F(ControlTest, OversizedMessageIsRefusedAndClosed) {
  {
    RawClient c(cfg_.socket_path);
    c.send_all(std::string(200 * 1024, 'x'));  // no newline, 200 KiB > 64 KiB
    bool eof = false;
    json e = json::parse(c.read_line(3000, &eof));
    EXPECT_EQ(e["code"], "too_large");
    EXPECT_NE(e["error"].get<std::string>().find("65536"), std::string::npos);
    EXPECT_TRUE(c.closed_by_peer(2000));
  }
  {
    // A complete but oversized line, as valid JSON.
    RawClient c(cfg_.socket_path);
    const std::string big = json{{"cmd", "status"}, {"args", {{"pad", std::string(70000, 'a')}}}}.dump() + "\n";
    c.send_all(big);
    EXPECT_EQ(json::parse(c.read_line(3000))["code"], "too_large");
    EXPECT_TRUE(c.closed_by_peer(2000));
  }
  // Just under the limit is fine.
  {
    RawClient c(cfg_.socket_path);
    std::string ok = json{{"cmd", "status"}, {"args", {{"pad", std::string(60000, 'a')}}}}.dump();
    ASSERT_LT(ok.size(), 65536u);
    EXPECT_TRUE(raw(c, ok)["ok"].get<bool>());
  }
  EXPECT_EQ(ctl({"status"}).code, 0);
}

TEST_F(ControlTest, StalledClientsAreDroppedWhileOthersAreServed) {
  RawClient silent(cfg_.socket_path);
  RawClient partial(cfg_.socket_path);
  ASSERT_TRUE(silent.ok() && partial.ok());
  partial.send_all(R"({"cmd":"sta)");
  // While both stall, flowpicctl gets answers at once.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ctl({"status"}).code, 0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  // After request_timeout_ms (400) both are told and dropped.
  for (RawClient* c : {&silent, &partial}) {
    bool eof = false;
    const std::string line = c->read_line(3000, &eof);
    ASSERT_FALSE(line.empty());
    json e = json::parse(line);
    EXPECT_EQ(e["code"], "timeout");
    EXPECT_TRUE(c->closed_by_peer(2000));
  }
  EXPECT_GE(server_->stats().timeouts, 2u);
}

TEST_F(ControlTest, FiftyConcurrentClients) {
  std::vector<ctltest::Child> kids;
  for (int i = 0; i < 50; ++i)
    kids.push_back(ctltest::spawn(ctl_exe(), {"-s", cfg_.socket_path, "--json", i % 2 ? "status" : "stats"}));
  int ok = 0;
  for (size_t i = 0; i < kids.size(); ++i) {
    RunResult r = kids[i].wait();
    EXPECT_EQ(r.code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    if (r.code == 0 && !j.is_discarded() && (i % 2 ? j.contains("version") : j.contains("ports"))) ++ok;
  }
  EXPECT_EQ(ok, 50);
}

TEST_F(ControlTest, BusyBeyondMaxClients) {
  ControlServerConfig cfg;
  cfg.socket_path = dir_ + "/small.sock";
  cfg.max_clients = 2;
  cfg.request_timeout_ms = 2000;
  ControlServer small(cfg);
  small.handle("ping", [](const json&) { return json("pong"); });
  small.start();
  RawClient a(cfg.socket_path), b(cfg.socket_path);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  RawClient c(cfg.socket_path);
  EXPECT_EQ(json::parse(c.read_line(2000))["code"], "busy");
  EXPECT_EQ(raw(a, R"({"cmd":"ping"})")["result"], "pong");
  EXPECT_EQ(small.stats().rejected_busy, 1u);
}

TEST_F(ControlTest, SocketIsMode0600EvenWithPermissiveUmask) {
  struct stat st {};
  ASSERT_EQ(::stat(cfg_.socket_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::getuid());

  const mode_t old = ::umask(0);
  ControlServerConfig cfg;
  cfg.socket_path = dir_ + "/wide.sock";
  ControlServer s(cfg);
  s.start();
  ::umask(old);
  ASSERT_EQ(::stat(cfg.socket_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(::umask(old), old) << "umask restored";
  s.stop();
  EXPECT_FALSE(std::filesystem::exists(cfg.socket_path)) << "stop() removes its socket";
}

TEST_F(ControlTest, SecondInstanceRefusedStaleSocketReplaced) {
  ControlServer second(cfg_);
  try {
    second.start();
    FAIL() << "a second server on a live socket must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another instance is listening on " + cfg_.socket_path), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(second.running());
  EXPECT_EQ(ctl({"status"}).code, 0) << "the first one still serves";

  // A stale socket file (a killed instance) is replaced.
  const std::string stale = dir_ + "/stale.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, stale.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(fd);
  ControlServerConfig cfg;
  cfg.socket_path = stale;
  ControlServer s(cfg);
  s.handle("ping", [](const json&) { return json("pong"); });
  ASSERT_NO_THROW(s.start());
  RawClient c(stale);
  EXPECT_EQ(raw(c, R"({"cmd":"ping"})")["result"], "pong");

  // Something that is not a socket is never removed.
  const std::string plain = dir_ + "/plain.sock";
  std::ofstream(plain) << "precious";
  cfg.socket_path = plain;
  ControlServer t(cfg);
  EXPECT_THROW(t.start(), std::runtime_error);
  EXPECT_EQ(ctltest::slurp(plain), "precious");

  cfg.socket_path = dir_ + "/" + std::string(120, 'x') + ".sock";
  ControlServer u(cfg);
  EXPECT_THROW(u.start(), std::runtime_error);
}

}  // namespace

namespace {
// Issue 16: a socket path in a shared directory can be bound by any local user before flowpicd
// (a squatter answered `model load` in the trial). flowpicctl asks the kernel who serves the
// socket (SO_PEERCRED) and talks only to root, itself or --allow-uid. Needs root (to be another
// uid for the squatter).
TEST(ControlPeer, FlowpicctlRefusesASocketServedByAnotherUser) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run the squatter as another uid";
  ASSERT_FALSE(ctl_exe().empty());
  const std::string dir = ctltest::make_temp_dir("flowpic-squat");
  ::chmod(dir.c_str(), 0777);
  const std::string path = dir + "/flowpicd.sock";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {  // the squatter: nobody, answering every request "ok"
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(2);
    ::signal(SIGPIPE, SIG_IGN);  // flowpicctl hangs up on it without reading
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) _exit(3);
    ::chmod(path.c_str(), 0777);
    (void)!::write(ready[1], "r", 1);
    for (;;) {
      const int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) _exit(0);
      char buf[4096];
      (void)!::read(c, buf, sizeof buf);
      const std::string reply = R"({"ok":true,"result":{"id":"evil-model","previous":"x","applied_from":"next window"}})" "\n";
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  }
  char r = 0;
  ASSERT_EQ(::read(ready[0], &r, 1), 1) << "the squatter did not start";
  RunResult res = ctltest::run(ctl_exe(), {"-s", path, "model", "load", "/tmp/x.fpm"});
  EXPECT_EQ(res.code, 3) << res.out << res.err;
  EXPECT_NE(res.err.find("is served by uid 65534"), std::string::npos) << res.err;
  EXPECT_EQ(res.out.find("evil-model"), std::string::npos) << "flowpicctl believed the squatter: " << res.out;
  // Trusted on purpose (flowpicd's service user): it talks.
  res = ctltest::run(ctl_exe(), {"-s", path, "--allow-uid", "65534", "--json", "model", "load", "/tmp/x.fpm"});
  EXPECT_EQ(res.code, 0) << res.err;
  EXPECT_NE(res.out.find("evil-model"), std::string::npos) << res.out;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);
}
}  // namespace

namespace {
// Issue 16, the server side: flowpicd asks the kernel who connected (SO_PEERCRED) and answers
// only root, its own uid, control.allowed_uids and primary gids in control.allowed_gids. With
// allowed_gids the socket is 0660 in the first gid's group, so a member can connect at all; a
// process that passes the file permission only through a supplementary group is still refused.
TEST(ControlPeer, ServerRefusesClientsOutsideTheAllowedIds) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run clients as other uids";
  const std::string dir = ctltest::make_temp_dir("flowpic-peer");
  ::chmod(dir.c_str(), 0755);
  ControlServerConfig cfg;
  cfg.socket_path = dir + "/flowpicd.sock";
  cfg.allowed_gids = {65534};
  ControlServer server(cfg);
  server.handle("status", [](const json&) { return json{{"version", "peer-test"}}; });
  server.start();
  struct stat st {};
  ASSERT_EQ(::stat(cfg.socket_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, 65534u);
  // A client as (uid, gid, supplementary groups): prints the reply line, or exits 9 if connect fails.
  auto client = [&](uid_t uid, gid_t gid, std::vector<gid_t> groups) -> std::string {
    int out[2];
    if (::pipe(out) != 0) return "pipe";
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(out[0]);
      if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(8);
      RawClient c(cfg.socket_path);
      if (!c.ok()) _exit(9);
      c.send_all("{\"cmd\":\"status\"}\n");
      const std::string line = c.read_line(3000) + "\n";
      (void)!::write(out[1], line.data(), line.size());
      _exit(0);
    }
    ::close(out[1]);
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? got : "exit " + std::to_string(WEXITSTATUS(status));
  };
  // nobody/nogroup: its primary gid is allowed.
  std::string r = client(65534, 65534, {});
  EXPECT_NE(r.find("peer-test"), std::string::npos) << r;
  // uid 12345 whose primary gid is 12345, member of 65534 only as a supplementary group: the
  // file lets it connect, the server refuses it.
  r = client(12345, 12345, {65534});
  EXPECT_NE(r.find("\"forbidden\""), std::string::npos) << r;
  EXPECT_NE(r.find("uid 12345 may not control"), std::string::npos) << r;
  EXPECT_EQ(server.stats().rejected_peer, 1u);
  // Root always may.
  RawClient root(cfg.socket_path);
  root.send_all("{\"cmd\":\"status\"}\n");
  EXPECT_NE(root.read_line(3000).find("peer-test"), std::string::npos);
  server.stop();
  std::filesystem::remove_all(dir);
}
}  // namespace
