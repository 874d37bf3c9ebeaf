// flowpicd driven only through the real flowpicctl binary (and DPDK's dpdk-telemetry.py, and a
// Prometheus scrape over 127.0.0.1): every control command in human and --json form against a
// running appliance on net_pcap vdevs (--no-huge, unique --file-prefix, CPUs 0-1), checked
// against the summary it writes when SIGTERM stops it; and 100 live model swaps under
// continuous traffic (net_pcap infinite_rx) with corrupt and incompatible files in between.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "../ctl/prom_text.hpp"
#include "harness.hpp"

using namespace flowpic;
using namespace flowpic::test;
using nlohmann::json;

namespace {

std::string flowpicctl_bin() { return env_or("FLOWPICCTL", ""); }
const char* kTelemetryScript = "/usr/bin/dpdk-telemetry.py";

class Ctl {
 public:
  Ctl(std::string dir, std::string sock) : dir_(std::move(dir)), sock_(std::move(sock)) {}
  RunResult run(std::vector<std::string> args, int timeout_s = 120) {
    args.insert(args.begin(), {"-s", sock_, "--timeout", "60000"});
    return run_process(flowpicctl_bin(), args, dir_, timeout_s, "ctl" + std::to_string(n_++));
  }
  // --json, exit code 0 expected; the parsed stdout.
  json ok(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    const RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 0) << "flowpicctl " << args[1] << ": " << r.out << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  // --json, exit code 1 expected; the error code of the reply.
  std::string refused(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    const RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    const json j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("code", std::string("?")) : "?";
  }

 private:
  std::string dir_, sock_;
  int n_ = 0;
};

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) v.push_back(json::parse(l));
  return v;
}

std::string flip_byte(const std::string& bytes, std::size_t at) {
  std::string s = bytes;
  s[at] = static_cast<char>(s[at] ^ 0x5a);
  return s;
}

class FlowpicdCtl : public ::testing::Test {
 protected:
  void SetUp() override {
    if (flowpicd_bin().empty() || flowpicctl_bin().empty())
      GTEST_SKIP() << "FLOWPICD / FLOWPICCTL not set (run through meson test)";
    setenv("FLOWPICD_RUN_DIR", (dir_ / "run").c_str(), 1);  // run directories here, not in /run
  }
  // Polls until pred(stats) holds or timeout_s passes; returns the last stats.
  template <class P>
  json wait_stats(Ctl& ctl, Daemon& d, P pred, int timeout_s = 90) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    json s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!d.running()) {
        ADD_FAILURE() << "flowpicd exited early\n" << d.err();
        return s;
      }
      const RunResult r = ctl.run({"--json", "stats"});
      if (r.exit_code == 0) {
        s = json::parse(r.out, nullptr, false);
        if (s.is_object() && pred(s)) return s;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "condition not reached; last stats: " << s.dump();
    return s;
  }
  TempDir dir_;
};

// Every command, human and --json, exit codes, against flowpicd replaying wa_voice.pcap (kept
// running after the capture ends, so its numbers hold still); then SIGTERM and the summary.
TEST_F(FlowpicdCtl, EveryCommandAgainstARunningAppliance) {
  const std::string m1 = dir_ / "video.fpm", m2 = dir_ / "voip.fpm", timew = dir_ / "timew.fpm";
  const std::string id1 = make_model(m1, 1, 7, "video")->id();   // every window: Video
  const std::string id2 = make_model(m2, 0, 8, "voip")->id();    // every window: VoIP
  WindowPolicy tw;
  tw.kind = WindowPolicy::Kind::kTime;
  tw.length_ns = 15 * kNsPerSec;
  const std::string id3 = make_model(timew, 2, 9, "timew", &tw)->id();
  const std::string sock = dir_ / "ctl.sock", verdicts = dir_ / "verdicts.jsonl";
  ConfigSpec c;
  c.model = m1;
  c.ports.push_back({"p0", "net_pcap0,rx_pcap=" + test_data() + "/wa_voice.pcap", "p0"});
  c.verdicts = verdicts;
  c.exit_at_end = false;
  c.prefix = unique_prefix();
  c.extra = "control: {socket: " + sock + ", prometheus: {enabled: true, address: 127.0.0.1, port: 0}}\n";
  Daemon d(dir_.path(), yaml_config(c));
  Ctl ctl(dir_.path(), sock);

  // The whole capture (736 packets) received and every emitted window classified.
  const json st = wait_stats(ctl, d, [](const json& s) {
    return s["ports"][0]["rx"]["packets"] == 736 &&
           s["lcores"][0]["windows"]["emitted"] == s["stages"]["inference"]["pictures"] &&
           s["stages"]["inference"]["pictures"].get<uint64_t>() > 0;
  });
  ASSERT_TRUE(st.is_object());
  const uint64_t pictures = st["stages"]["inference"]["pictures"];
  EXPECT_EQ(st["ports"][0]["tx"]["packets"], 736);
  uint64_t capture_bytes = 0;  // frame bytes of the capture: the known answer for rx and tx bytes
  for (const auto& f : read_pcap_packets(test_data() + "/wa_voice.pcap")) capture_bytes += f.size();
  EXPECT_EQ(st["ports"][0]["rx"]["bytes"], capture_bytes);
  EXPECT_EQ(st["ports"][0]["tx"]["bytes"], capture_bytes);
  EXPECT_EQ(st["lcores"][0]["rx"]["bytes"], capture_bytes);
  EXPECT_EQ(st["classes"]["Video"], pictures);
  EXPECT_EQ(st["classes"]["VoIP"], 0);

  // stats, human: the verdicts-per-class table has the Video row with its count.
  {
    const RunResult r = ctl.run({"stats"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\\nCLASS +VERDICTS\\n")) ) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\\nVideo +" + std::to_string(pictures) + "\\n"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\\np0 +736 +" + std::to_string(capture_bytes) + " +736 +" +
                                                     std::to_string(capture_bytes) + " +0\\n")))
        << r.out;
  }
  {  // --json also after the command
    const RunResult r = ctl.run({"stats", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["ports"][0]["rx"]["packets"], 736);
  }
  // stats --watch: JSON lines, the second with rates.
  {
    const RunResult r = ctl.run({"--json", "stats", "--watch", "0.3", "--count", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto polls = json_lines(r.out);
    ASSERT_EQ(polls.size(), 2u) << r.out;
    EXPECT_TRUE(polls[1].contains("rates")) << r.out;
  }

  // status
  {
    const json s = ctl.ok({"status"});
    EXPECT_FALSE(s.value("version", std::string()).empty());
    EXPECT_EQ(s["clock"], "trace");
    EXPECT_EQ(s["ports"][0]["name"], "p0");
    EXPECT_EQ(s["ports"][0]["driver"], "net_pcap");
    EXPECT_EQ(s["lcores"][0]["lcore"], 1);
    EXPECT_EQ(s["lcores"][0]["cpu"], 1);
    EXPECT_EQ(s["model"]["id"], id1);
    EXPECT_GT(s["uptime_s"].get<double>(), 0.0);
    const RunResult r = ctl.run({"status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(id1), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("net_pcap"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("trace"), std::string::npos) << r.out;
  }

  // flows top / get: real flows of the capture.
  {
    const json top = ctl.ok({"flows", "top", "-n", "5"});
    ASSERT_EQ(top["flows"].size(), 5u) << top.dump();
    for (std::size_t i = 1; i < 5; ++i)
      EXPECT_GE(top["flows"][i - 1]["packets"].get<uint64_t>(), top["flows"][i]["packets"].get<uint64_t>());
    const json& f0 = top["flows"][0];
    EXPECT_GE(f0["packets"].get<uint64_t>(), 20u);  // a count window closed: it has a verdict
    EXPECT_EQ(f0["class"], "Video");
    EXPECT_EQ(f0["model"], id1);
    const json byb = ctl.ok({"flows", "top", "-n", "3", "--by", "bytes"});
    ASSERT_EQ(byb["flows"].size(), 3u);
    EXPECT_GE(byb["flows"][0]["bytes"].get<uint64_t>(), byb["flows"][1]["bytes"].get<uint64_t>());
    const json g = ctl.ok({"flows", "get", f0["flow"].get<std::string>()});
    EXPECT_EQ(g["flow"]["flow"], f0["flow"]);
    EXPECT_EQ(g["flow"]["packets"], f0["packets"]);
    EXPECT_EQ(g["flow"]["class"], "Video");
    RunResult r = ctl.run({"flows", "top", "-n", "5"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(f0["flow"].get<std::string>()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Video"), std::string::npos) << r.out;
    r = ctl.run({"flows", "get", f0["flow"].get<std::string>()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(std::to_string(f0["packets"].get<uint64_t>())), std::string::npos) << r.out;
    EXPECT_EQ(ctl.refused({"flows", "get", "udp 10.9.9.9:1 -> 10.9.9.8:2"}), "not_found");
    EXPECT_EQ(ctl.run({"flows", "get", "not a flow"}).exit_code, 2);
    EXPECT_EQ(ctl.run({"flows", "top", "--by", "colour"}).exit_code, 2);
  }

  // model show / load / rollback, rejected files leave the serving model alone.
  {
    json ms = ctl.ok({"model", "show"});
    EXPECT_EQ(ms["current"]["id"], id1);
    EXPECT_TRUE(ms["previous"].is_null());
    EXPECT_EQ(ctl.refused({"model", "rollback"}), "no_previous");
    const json ld = ctl.ok({"model", "load", m2});
    EXPECT_EQ(ld["id"], id2);
    EXPECT_EQ(ld["previous"], id1);
    ms = ctl.ok({"model", "show"});
    EXPECT_EQ(ms["current"]["id"], id2);
    EXPECT_EQ(ms["current"]["path"], std::filesystem::absolute(m2).string());
    EXPECT_EQ(ms["previous"]["id"], id1);
    const std::string bytes = read_file(m2);
    write_file(dir_ / "flipped.fpm", flip_byte(bytes, bytes.size() / 2));
    write_file(dir_ / "truncated.fpm", bytes.substr(0, bytes.size() / 3));
    EXPECT_EQ(ctl.refused({"model", "load", dir_ / "missing.fpm"}), "model_unreadable");
    EXPECT_EQ(ctl.refused({"model", "load", dir_ / "flipped.fpm"}), "model_invalid");
    EXPECT_EQ(ctl.refused({"model", "load", dir_ / "truncated.fpm"}), "model_invalid");
    EXPECT_EQ(ctl.refused({"model", "load", timew}), "model_incompatible");
    const RunResult why = ctl.run({"model", "load", timew});
    EXPECT_EQ(why.exit_code, 1);
    EXPECT_NE(why.err.find("count windows of 20 packets"), std::string::npos) << why.err;
    // Larger than control.model_max_mb (16 MiB by default): refused before a byte is read.
    {
      const std::string big = dir_ / "huge.fpm";
      write_file(big, bytes);
      std::filesystem::resize_file(big, (16u << 20) + 1);  // sparse: costs no disk
      EXPECT_EQ(ctl.refused({"model", "load", big}), "model_too_large");
      const RunResult too = ctl.run({"model", "load", big});
      EXPECT_NE(too.err.find("control.model_max_mb"), std::string::npos) << too.err;
    }
    ms = ctl.ok({"model", "show"});
    EXPECT_EQ(ms["current"]["id"], id2) << "a rejected file replaced the serving model";
    EXPECT_EQ(ms["previous"]["id"], id1);
    const RunResult show = ctl.run({"model", "show"});
    EXPECT_NE(show.out.find(id2), std::string::npos) << show.out;
    const json rb = ctl.ok({"model", "rollback"});
    EXPECT_EQ(rb["id"], id1);
    EXPECT_EQ(rb["previous"], id2);
    EXPECT_EQ(ctl.ok({"status"})["model"]["id"], id1);
    (void)id3;
  }

  // Prometheus on 127.0.0.1 (ephemeral port, read from the log), strict text format.
  {
    std::smatch m;
    const std::string log = d.out() + d.err();
    ASSERT_TRUE(std::regex_search(log, m, std::regex("Prometheus metrics on http://127\\.0\\.0\\.1:(\\d+)/metrics"))) << log;
    const uint16_t port = static_cast<uint16_t>(std::stoi(m[1]));
    const auto resp = promtext::parse_http(promtext::http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 20000));
    ASSERT_EQ(resp.status, 200);
    const auto e = promtext::parse_exposition(resp.body);
    const auto* rx = e.find("flowpic_port_rx_packets_total", {{"port", "p0"}});
    ASSERT_NE(rx, nullptr) << resp.body;
    EXPECT_EQ(rx->value, 736);
    const auto* video = e.find("flowpic_verdicts_total", {{"class", "Video"}});
    ASSERT_NE(video, nullptr) << resp.body;
    EXPECT_EQ(video->value, static_cast<double>(pictures));
    // The verdict output's lines, as the summary will count them (every verdict written).
    const auto* lines = e.find("flowpic_output_lines_total", {{"output", "verdicts"}});
    ASSERT_NE(lines, nullptr) << resp.body;
    EXPECT_EQ(lines->value, static_cast<double>(pictures));
    const auto* lost = e.find("flowpic_output_dropped_lines_total", {{"output", "verdicts"}});
    ASSERT_NE(lost, nullptr) << resp.body;
    EXPECT_EQ(lost->value, 0);
    bool info = false;
    for (const auto& s : e.samples)
      if (s.name == "flowpic_model_info" && s.labels.count("model") && s.labels.at("model") == id1) info = true;
    EXPECT_TRUE(info) << resp.body;
  }

  // DPDK telemetry: dpdk-telemetry.py lists and reads /flowpic/ commands.
  if (access(kTelemetryScript, R_OK) == 0) {
    // Commands on stdin (not a tty): one JSON reply per line.
    write_file(dir_ / "tel.in", "/\n/flowpic/stats,ports/0\n/flowpic/model\n/flowpic/stats,classes\n");
    const RunResult t = run_process("/bin/sh", {"-c", std::string("/usr/bin/python3 ") + kTelemetryScript + " -f " +
                                                           c.prefix + " < " + (dir_ / "tel.in")},
                                    dir_.path(), 60, "tel2");
    ASSERT_EQ(t.exit_code, 0) << t.err;
    const auto replies = json_lines(t.out);
    ASSERT_EQ(replies.size(), 4u) << t.out << t.err;
    const json& list = replies[0]["/"];
    for (const char* cmd : {"/flowpic/status", "/flowpic/stats", "/flowpic/model", "/flowpic/flows"})
      EXPECT_NE(std::find(list.begin(), list.end(), cmd), list.end()) << cmd << " not listed: " << list.dump();
    EXPECT_EQ(replies[1]["/flowpic/stats"]["rx/packets"], 736) << replies[1].dump();
    EXPECT_EQ(replies[1]["/flowpic/stats"]["name"], "p0");
    EXPECT_EQ(replies[2]["/flowpic/model"]["current/id"], id1) << replies[2].dump();
    EXPECT_EQ(replies[3]["/flowpic/stats"]["Video"], pictures) << replies[3].dump();
  }

  // outputs rotate (logrotate moved the file away).
  std::filesystem::rename(verdicts, verdicts + ".1");
  {
    const json rot = ctl.ok({"outputs", "rotate"});
    ASSERT_EQ(rot["reopened"].size(), 1u);
    EXPECT_EQ(rot["reopened"][0], verdicts);
    EXPECT_TRUE(std::filesystem::exists(verdicts));
    EXPECT_EQ(json_lines(read_file(verdicts + ".1")).size(), pictures) << "rotate flushes what was written";
  }

  // log-level
  {
    const json l = ctl.ok({"log-level", "debug"});
    EXPECT_EQ(l["level"], "debug");
    EXPECT_EQ(l["previous"], "info");
    EXPECT_EQ(ctl.ok({"log-level", "info"})["previous"], "debug");
    EXPECT_EQ(ctl.run({"log-level", "loud"}).exit_code, 2);
  }
  // Client-side exit codes: unknown command 2, no socket 3.
  EXPECT_EQ(ctl.run({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_process(flowpicctl_bin(), {"-s", dir_ / "nobody.sock", "status"}, dir_.path(), 60, "nosock").exit_code, 3);

  // Another picture config (time axis, normalisation) and other class names, same windows:
  // accepted, applied from the next windows: the windows still open are closed at stop and
  // classified by it.
  std::string other_id;
  {
    ModelInfo info;
    info.arch = Arch::kLeNet;
    info.classes = {"Web", "Voice"};
    info.name = "other";
    info.picture.time_axis = TimeAxis::kFixed;
    info.picture.norm = Normalisation::kLog;
    auto m = Model::create(info, 31);
    auto& t = m->mutable_tensors();
    std::fill(t[t.size() - 2].data.begin(), t[t.size() - 2].data.end(), 0.f);
    std::fill(t[t.size() - 1].data.begin(), t[t.size() - 1].data.end(), 0.f);
    t[t.size() - 1].data[1] = 10.f;  // every window: Voice
    m->save(dir_ / "other.fpm");
    other_id = Model::load(dir_ / "other.fpm")->id();
    const json ld = ctl.ok({"model", "load", dir_ / "other.fpm"});
    EXPECT_EQ(ld["id"], other_id);
    EXPECT_EQ(ld["applied_from"], "next window");
    const json s = ctl.ok({"status"});
    EXPECT_EQ(s["model"]["classes"], json({"Web", "Voice"}));
    EXPECT_EQ(s["model"]["picture"]["time_axis"], "fixed");
  }

  const json last = ctl.ok({"stats"});
  ASSERT_EQ(d.terminate(), 0) << d.err();
  const json sum = d.summary();
  ASSERT_TRUE(sum.is_object()) << d.err();
  EXPECT_EQ(sum["stop_reason"], "signal SIGTERM");
  EXPECT_EQ(sum["model"], other_id) << "the summary names the model serving at stop";
  EXPECT_EQ(sum["ports"][0]["rx"], last["ports"][0]["rx"]["packets"]);
  EXPECT_EQ(sum["ports"][0]["forwarded"], last["ports"][0]["tx"]["packets"]);
  EXPECT_EQ(sum["lcores"][0]["flows"]["created"], last["lcores"][0]["flows"]["created"]);
  EXPECT_EQ(sum["lcores"][0]["parse"], last["lcores"][0]["parse"]);
  // Stopping closes the open windows: classified by the model loaded last, in the new file.
  EXPECT_EQ(sum["verdicts"]["by_class"]["Video"], last["classes"]["Video"]);
  const auto after = json_lines(read_file(verdicts));
  EXPECT_GT(after.size(), 0u) << "no window was open at stop";
  for (const auto& v : after) {
    EXPECT_EQ(v["model"], other_id);
    EXPECT_EQ(v["class"], "Voice");
  }
  EXPECT_EQ(sum["verdicts"]["by_class"]["Voice"], after.size());
  EXPECT_EQ(sum["verdicts"]["total"].get<uint64_t>(),
            json_lines(read_file(verdicts + ".1")).size() + json_lines(read_file(verdicts)).size());
  EXPECT_FALSE(std::filesystem::exists(sock)) << "the socket file is removed at stop";
}

// 100 swaps alternating two models (same window policy, different weights and winners) under
// continuous traffic, corrupt, truncated, missing and incompatible files thrown in between.
TEST_F(FlowpicdCtl, HundredLiveSwapsUnderTrafficLoseNothing) {
  WindowPolicy w;  // 100 ms time windows on the TSC: a steady verdict rate between the swaps
  w.kind = WindowPolicy::Kind::kTime;
  w.length_ns = kNsPerSec / 10;
  const std::string ma = dir_ / "a.fpm", mb = dir_ / "b.fpm", mc = dir_ / "c.fpm", inc = dir_ / "count.fpm";
  const std::string ida = make_model(ma, 0, 21, "swapa", &w)->id();  // VoIP
  const std::string idb = make_model(mb, 1, 22, "swapb", &w)->id();  // Video
  const std::string idc = make_model(mc, 3, 23, "swapc", &w)->id();  // Chat
  const std::string idi = make_model(inc, 2, 24, "count")->id();    // count windows: incompatible
  const std::map<std::string, std::string> winner = {{ida, "VoIP"}, {idb, "Video"}, {idc, "Chat"}};
  const std::string bytes = read_file(ma);
  write_file(dir_ / "flipped.fpm", flip_byte(bytes, bytes.size() - 100));
  write_file(dir_ / "truncated.fpm", bytes.substr(0, bytes.size() - 7));
  const std::vector<std::pair<std::string, std::string>> bad = {{dir_ / "flipped.fpm", "model_invalid"},
                                                                {dir_ / "truncated.fpm", "model_invalid"},
                                                                {inc, "model_incompatible"},
                                                                {dir_ / "missing.fpm", "model_unreadable"}};

  const std::string sock = dir_ / "ctl.sock", verdicts = dir_ / "verdicts.jsonl";
  ConfigSpec c;
  c.model = ma;
  c.ports.push_back({"p0", "net_pcap0,rx_pcap=" + test_data() + "/wa_voice.pcap,infinite_rx=1", "p0"});
  c.clock = "tsc";          // infinite_rx packets carry no timestamp
  c.mempool = "8191";       // infinite_rx keeps the whole capture in mbufs
  c.verdicts = verdicts;
  c.exit_at_end = false;
  c.extra = "control: {socket: " + sock + "}\n";
  Daemon d(dir_.path(), yaml_config(c));
  Ctl ctl(dir_.path(), sock);
  wait_stats(ctl, d, [](const json& s) { return s["classes"]["VoIP"].get<uint64_t>() > 0; });

  auto size_of = [&] {
    std::error_code ec;
    const auto n = std::filesystem::file_size(verdicts, ec);
    return ec ? uint64_t{0} : static_cast<uint64_t>(n);
  };
  const uint64_t before_first = size_of();
  std::string serving = ida;
  std::size_t rejected = 0;
  for (int i = 0; i < 100; ++i) {
    const bool to_b = i % 2 == 0;
    const json ld = ctl.ok({"model", "load", to_b ? mb : ma});
    ASSERT_EQ(ld["id"], to_b ? idb : ida) << ld.dump();
    ASSERT_EQ(ld["previous"], serving);
    serving = to_b ? idb : ida;
    if (i % 10 == 5) {  // the lcore answers flow questions between bursts while traffic flows
      const json top = ctl.ok({"flows", "top", "-n", "3"});
      ASSERT_EQ(top["flows"].size(), 3u) << top.dump();
      EXPECT_GE(top["flows"][0]["packets"].get<uint64_t>(), top["flows"][1]["packets"].get<uint64_t>());
      const json g = ctl.ok({"flows", "get", top["flows"][2]["flow"].get<std::string>()});
      EXPECT_GE(g["flow"]["packets"].get<uint64_t>(), top["flows"][2]["packets"].get<uint64_t>()) << "counts only grow";
    }
    if (i % 4 == 3) {
      const auto& [path, code] = bad[rejected++ % bad.size()];
      EXPECT_EQ(ctl.refused({"model", "load", path}), code) << path;
      const json ms = ctl.ok({"model", "show"});
      EXPECT_EQ(ms["current"]["id"], serving) << "rejected " << path << " replaced the serving model";
    }
  }
  const uint64_t before_c = size_of();
  ASSERT_EQ(ctl.ok({"model", "load", mc})["id"], idc);
  // Verdicts of C appear (windows close on the TSC while traffic flows).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (read_file(verdicts).find("\"" + idc + "\"") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(d.running()) << d.err();
  ASSERT_EQ(d.terminate(), 0) << d.err();
  const json sum = d.summary();
  ASSERT_TRUE(sum.is_object()) << d.err();

  // No packet lost: received = forwarded on every port and lcore.
  for (const auto& p : sum["ports"]) {
    EXPECT_GT(p["rx"].get<uint64_t>(), 100000u) << "traffic was not continuous";
    EXPECT_EQ(p["rx"], p["forwarded"]) << p.dump();
    EXPECT_EQ(p["rx_bytes"], p["forwarded_bytes"]) << p.dump();
  }
  for (const auto& l : sum["lcores"]) EXPECT_EQ(l["rx"], l["tx"]) << l.dump();
  EXPECT_EQ(sum["inference"]["failed_batches"], 0);

  // Every verdict names a model that had been loaded when the line reached the file, and its
  // class is that model's winner (the id really is the model that computed it).
  const std::string text = read_file(verdicts);
  std::map<std::string, uint64_t> per_model;
  std::size_t off = 0, lines = 0;
  while (off < text.size()) {
    std::size_t nl = text.find('\n', off);
    if (nl == std::string::npos) nl = text.size();
    const json v = json::parse(text.substr(off, nl - off));
    const std::string id = v["model"];
    ASSERT_EQ(winner.count(id), 1u) << "verdict from a model never loaded: " << id;
    EXPECT_EQ(v["class"], winner.at(id));
    if (nl <= before_first) {
      EXPECT_EQ(id, ida) << "before the first swap only the start model serves";
    }
    if (nl <= before_c) {
      EXPECT_NE(id, idc) << "a verdict of C before C was loaded";
    }
    EXPECT_NE(id, idi);
    ++per_model[id];
    ++lines;
    off = nl + 1;
  }
  EXPECT_EQ(lines, sum["verdicts"]["total"].get<uint64_t>());
  EXPECT_GT(per_model[ida], 0u);
  EXPECT_GT(per_model[idb], 0u);
  EXPECT_GT(per_model[idc], 0u);
}

}  // namespace
