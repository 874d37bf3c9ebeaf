// Control socket of flowpicd: a Unix domain stream server speaking newline-delimited JSON.
// Runs on its own thread (poll()), serves many clients at once, and never dies on bad input:
// every bad request gets an error reply. Protocol and reply schemas: docs/control.md.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace flowpic {

struct ControlServerConfig {
  std::string socket_path = "/run/flowpic/flowpicd.sock";
  int request_timeout_ms = 5000;        // a client must send a full request (and read its reply) within this
  size_t max_message_bytes = 64 * 1024; // one request line, newline excluded
  int max_clients = 128;                // further connections get a "busy" error reply and are closed
  int job_timeout_ms = 60000;           // a slow command (handle_async) must finish within this
  // Who may talk to the server, by the kernel's word (SO_PEERCRED): root, the server's own uid,
  // these uids, and processes whose primary gid is in allowed_gids. With allowed_gids the socket
  // is mode 0660 and its group the first of them (so those users can connect at all); else 0600.
  std::vector<uint32_t> allowed_uids;
  std::vector<uint32_t> allowed_gids;
};

// Throw from a handler to choose the error code of the reply (default code: "failed").
struct CommandError : std::runtime_error {
  std::string code;
  CommandError(std::string code_, const std::string& message)
      : std::runtime_error(message), code(std::move(code_)) {}
};

// Error codes the server itself produces (handlers may add their own through CommandError).
namespace ctl_code {
inline constexpr const char* kUnknownCommand = "unknown_command";
inline constexpr const char* kBadRequest = "bad_request";  // garbled JSON, no "cmd", args not an object
inline constexpr const char* kTooLarge = "too_large";      // request longer than max_message_bytes
inline constexpr const char* kTimeout = "timeout";         // no full request within request_timeout_ms
inline constexpr const char* kBusy = "busy";               // max_clients reached
inline constexpr const char* kForbidden = "forbidden";     // the client's uid/gid is not allowed
inline constexpr const char* kFailed = "failed";           // handler threw a std::exception
inline constexpr const char* kCancelled = "cancelled";     // a slow command abandoned: nothing changed
}  // namespace ctl_code

struct ControlServerStats {
  uint64_t connections = 0;       // accepted
  uint64_t requests = 0;          // complete request lines seen
  uint64_t errors = 0;            // error replies sent (any code)
  uint64_t timeouts = 0;          // clients dropped by the deadline
  uint64_t rejected_busy = 0;     // connections refused by max_clients
  uint64_t rejected_peer = 0;     // connections refused: the peer's uid/gid is not allowed
};

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& args)>;
  // A slow command (e.g. loading a model file) in two steps. The prepare step runs on a job
  // thread of its own, with no lock held, while the server goes on answering other clients; it
  // may watch `cancelled` (set when the client goes away, its deadline passes or the server
  // stops) and stop early. The commit step it returns runs like a Handler (one handler at a time),
  // and only if the request was not cancelled: a request abandoned by its client changes nothing.
  // One slow command runs at a time: a second one meanwhile gets a "busy" error reply.
  using Commit = std::function<nlohmann::json()>;
  using AsyncHandler = std::function<Commit(const nlohmann::json& args, const std::atomic<bool>& cancelled)>;

  explicit ControlServer(ControlServerConfig cfg);
  ~ControlServer();  // stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Registers (or replaces) the handler of a command. Handlers run one at a time (the server
  // thread, or a caller of dispatch() such as the telemetry bridge, under one mutex), so they
  // never race each other; keep them short: they delay every other client.
  // args is always a JSON object ({} when the request had none). The returned JSON becomes
  // "result". Throwing CommandError/std::exception yields {"ok":false,...}.
  void handle(const std::string& name, Handler h, const std::string& help = "");
  void handle_async(const std::string& name, AsyncHandler h, const std::string& help = "");

  // Creates the socket (mode 0600; missing parent directories are created, 0777 & ~umask), removes a
  // stale socket file nothing listens on, and starts the thread. Throws std::runtime_error
  // with a one-line reason: another instance listens there, path is not a socket, too long,
  // permission denied, ...
  void start();
  // Empty when start() can make a socket at `path` as far as can be told without binding it,
  // else why not: too long for sun_path, an ancestor that is not a directory, an existing file
  // that is not a socket. start() checks it; `flowpicd --check` asks before anything starts.
  static std::string socket_path_problem(const std::string& path);
  // Stops the thread, closes every client and removes the socket file (if it is still ours).
  void stop();
  bool running() const noexcept { return running_.load(); }

  const std::string& socket_path() const noexcept { return cfg_.socket_path; }
  ControlServerStats stats() const;

  // Runs one request line through the dispatcher, as if a client had sent it; returns the reply
  // object. Thread-safe. Used by the server thread, the telemetry bridge and tests. A slow
  // command runs both its steps in the calling thread.
  nlohmann::json dispatch(std::string_view line);

 private:
  struct Entry {
    Handler fn;
    AsyncHandler async;
    std::string help;
  };
  // A slow command's fate, decided once: it commits, or it is abandoned, never both.
  struct JobControl {
    std::atomic<bool> cancelled{false};  // what the prepare step watches
    std::atomic<int> phase{0};           // 0 preparing, 1 committing, 2 abandoned
    bool try_commit() {
      int e = 0;
      return phase.compare_exchange_strong(e, 1);
    }
    bool try_abandon() {  // false: already committing (its reply is near)
      int e = 0;
      const bool ok = phase.compare_exchange_strong(e, 2) || e == 2;
      if (ok) cancelled = true;
      return ok;
    }
  };
  struct Job;  // the slow command in flight (control_server.cpp)
  void run();
  nlohmann::json call(const std::string& name, const nlohmann::json& args, JobControl* job = nullptr);
  // Parses a request line: the error reply when it is not a request, else {} and fills req/args.
  nlohmann::json parse_request(std::string_view line, nlohmann::json* req, nlohmann::json* args) const;
  // Copies the request's "id" into the reply and counts it.
  nlohmann::json finish(const nlohmann::json& req, nlohmann::json reply);
  bool is_async(const std::string& name) const;

  ControlServerConfig cfg_;
  mutable std::mutex mu_;  // guards handlers_ and stats_
  std::mutex exec_mu_;     // one handler at a time, whatever the calling thread
  std::map<std::string, Entry> handlers_;
  ControlServerStats stats_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd that wakes poll() for stop()
  dev_t sock_dev_ = 0;
  ino_t sock_ino_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Builds the reply objects of the protocol.
nlohmann::json ctl_ok(nlohmann::json result);
nlohmann::json ctl_error(const std::string& code, const std::string& message);

// A ready handler for "log.level": args {"level": "trace|debug|info|warn|error|critical|off"}
// sets spdlog's level on every registered logger; returns {"level": new, "previous": old}.
nlohmann::json log_level_handler(const nlohmann::json& args);

}  // namespace flowpic
