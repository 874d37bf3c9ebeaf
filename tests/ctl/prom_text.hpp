// Shared by the ctl and dataplane tests: a strict parser of the Prometheus text exposition
// format 0.0.4 (names, label syntax and escapes, values, HELP/TYPE before samples, contiguous
// families, no duplicate series; violations are gtest failures), and a tiny HTTP client.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace promtext {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped
  double value;
};

struct Exposition {
  std::map<std::string, std::string> type;  // family -> counter/gauge/...
  std::map<std::string, std::string> help;  // family -> unescaped text
  std::vector<Sample> samples;
  const Sample* find(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const Sample& s : samples)
      if (s.name == name && s.labels == labels) return &s;
    return nullptr;
  }
};

inline bool valid_metric_name(const std::string& n) {
  static const std::regex re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  return std::regex_match(n, re);
}
inline bool valid_label_name(const std::string& n) {
  static const std::regex re("[a-zA-Z_][a-zA-Z0-9_]*");
  return std::regex_match(n, re) && n.rfind("__", 0) != 0;
}

inline bool parse_value(const std::string& v, double& out) {
  if (v == "NaN") { out = NAN; return true; }
  if (v == "+Inf") { out = INFINITY; return true; }
  if (v == "-Inf") { out = -INFINITY; return true; }
  static const std::regex re(R"([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)");
  if (!std::regex_match(v, re)) return false;
  out = std::stod(v);
  return true;
}

// The family a sample belongs to (a counter's samples carry its own _total name here; histogram
// and summary suffixes are accepted for completeness).
inline std::string family_of(const std::string& sample, const std::map<std::string, std::string>& types) {
  if (types.count(sample)) return sample;
  for (const char* suf : {"_sum", "_count", "_bucket"}) {
    const std::string s(suf);
    if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
      const std::string base = sample.substr(0, sample.size() - s.size());
      if (types.count(base)) return base;
    }
  }
  return sample;
}

// Strict: any deviation is a test failure with the line that caused it.
inline void parse_into(const std::string& text, Exposition& e) {
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "exposition must end with a newline";
  std::set<std::string> closed_families;  // families whose samples are over
  std::string current_family;
  std::set<std::string> series;
  std::set<std::string> sampled;  // families that already have samples
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    SCOPED_TRACE("line " + std::to_string(lineno) + ": " + line);
    EXPECT_EQ(line.find('\r'), std::string::npos);
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream ls(line);
      std::string hash, kind, name;
      ls >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // plain comment
      EXPECT_EQ(hash, "#");
      EXPECT_TRUE(valid_metric_name(name)) << name;
      EXPECT_EQ(closed_families.count(name), 0u) << "metadata after the family's samples ended";
      EXPECT_EQ(sampled.count(name), 0u) << "HELP/TYPE after samples of " << name;
      const std::string prefix = "# " + kind + " " + name;
      std::string rest = line.size() > prefix.size() ? line.substr(prefix.size() + 1) : "";
      if (kind == "TYPE") {
        EXPECT_EQ(e.type.count(name), 0u) << "second TYPE for " << name;
        EXPECT_TRUE(rest == "counter" || rest == "gauge" || rest == "histogram" || rest == "summary" || rest == "untyped")
            << rest;
        e.type[name] = rest;
      } else {
        EXPECT_EQ(e.help.count(name), 0u) << "second HELP for " << name;
        std::string un;
        for (size_t i = 0; i < rest.size(); ++i) {
          if (rest[i] == '\\') {
            ASSERT_LT(i + 1, rest.size()) << "dangling backslash in HELP";
            const char c = rest[++i];
            EXPECT_TRUE(c == '\\' || c == 'n') << "bad HELP escape \\" << c;
            un += c == 'n' ? '\n' : c;
          } else {
            un += rest[i];
          }
        }
        e.help[name] = un;
      }
      if (current_family != name && !current_family.empty()) closed_families.insert(current_family);
      current_family = name;
      continue;
    }
    // name{l="v",...} value [timestamp]
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    EXPECT_TRUE(valid_metric_name(s.name)) << s.name;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        ASSERT_NE(eq, std::string::npos) << "label without '='";
        const std::string lname = line.substr(i, eq - i);
        EXPECT_TRUE(valid_label_name(lname)) << lname;
        ASSERT_LT(eq + 1, line.size());
        ASSERT_EQ(line[eq + 1], '"') << "label value must be quoted";
        size_t j = eq + 2;
        std::string val;
        bool closed = false;
        while (j < line.size()) {
          const char c = line[j];
          if (c == '\\') {
            ASSERT_LT(j + 1, line.size());
            const char n = line[j + 1];
            ASSERT_TRUE(n == '\\' || n == '"' || n == 'n') << "bad label escape \\" << n;
            val += n == 'n' ? '\n' : n;
            j += 2;
          } else if (c == '"') {
            closed = true;
            ++j;
            break;
          } else {
            ASSERT_NE(c, '\n');
            val += c;
            ++j;
          }
        }
        ASSERT_TRUE(closed) << "unterminated label value";
        EXPECT_EQ(s.labels.count(lname), 0u) << "duplicate label " << lname;
        s.labels[lname] = val;
        i = j;
        if (i < line.size() && line[i] == ',') ++i;
        else ASSERT_TRUE(i < line.size() && line[i] == '}') << "expected ',' or '}' at " << i;
      }
      ASSERT_LT(i, line.size());
      ++i;  // '}'
    }
    ASSERT_LT(i, line.size());
    ASSERT_EQ(line[i], ' ') << "one space before the value";
    std::istringstream vs(line.substr(i + 1));
    std::string value, ts, extra;
    vs >> value >> ts >> extra;
    EXPECT_TRUE(parse_value(value, s.value)) << "bad value '" << value << "'";
    if (!ts.empty()) {
      EXPECT_TRUE(std::regex_match(ts, std::regex("-?\\d+"))) << "bad timestamp";
    }
    EXPECT_TRUE(extra.empty()) << "trailing garbage";
    const std::string fam = family_of(s.name, e.type);
    EXPECT_TRUE(e.type.count(fam)) << "sample of " << s.name << " before (or without) its TYPE line";
    EXPECT_EQ(closed_families.count(fam), 0u) << "family " << fam << " is not contiguous";
    if (fam != current_family) {
      if (!current_family.empty()) closed_families.insert(current_family);
      current_family = fam;
    }
    sampled.insert(fam);
    if (e.type[fam] == "counter") {
      EXPECT_TRUE(s.name.size() > 6 && s.name.compare(s.name.size() - 6, 6, "_total") == 0)
          << "counter without _total: " << s.name;
      EXPECT_TRUE(s.value >= 0) << "negative counter";
    }
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
    EXPECT_TRUE(series.insert(key).second) << "duplicate series " << key;
    e.samples.push_back(std::move(s));
  }
}

inline Exposition parse_exposition(const std::string& text) {
  Exposition e;
  parse_into(text, e);
  return e;
}

// ------------------------------------------------------------------ HTTP over loopback

inline std::string http(uint16_t port, const std::string& request, int timeout_ms = 3000) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  size_t off = 0;
  while (off < request.size()) {
    const ssize_t w = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    resp.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return resp;
}

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

inline HttpResponse parse_http(const std::string& raw) {
  HttpResponse r;
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  std::istringstream head(raw.substr(0, end));
  std::string line;
  std::getline(head, line);
  if (line.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(colon + 2);
  }
  r.body = raw.substr(end + 4);
  return r;
}

}  // namespace promtext
