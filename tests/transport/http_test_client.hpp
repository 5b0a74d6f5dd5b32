// A plain HTTP/1.1 client on a blocking socket, for tests of HttpTransport:
// requests, whole responses, and the events of a chunked SSE stream. Every
// wait is for bytes, bounded by a timeout.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace livecast_test {

inline constexpr std::chrono::milliseconds http_wait_limit{5000};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  const std::string& header(const std::string& name) const {
    static const std::string empty;
    auto it = headers.find(name);
    return it == headers.end() ? empty : it->second;
  }
};

struct Event {
  std::string id;
  bool has_id = false;
  std::string event;
  std::string data;
  std::vector<std::string> comments;
};

// One TCP connection speaking just enough HTTP/1.1 for the tests.
class HttpClient {
 public:
  // `local_address`: where the connection comes from (any of 127.0.0.0/8
  // on Linux), for the per-address limit; empty: the kernel's choice.
  explicit HttpClient(std::uint16_t port, int receive_buffer = 0, const std::string& local_address = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    if (!local_address.empty()) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      REQUIRE(::inet_pton(AF_INET, local_address.c_str(), &local.sin_addr) == 1);
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~HttpClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void send(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may close early (refused requests)
      sent += static_cast<std::size_t>(n);
    }
  }

  void get(const std::string& target, const std::string& extra_headers = {}) {
    send("GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n");
  }
  void post(const std::string& target, const std::string& body, const std::string& extra_headers = {}) {
    send("POST " + target + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body);
  }

  // Reads more bytes into the buffer; false on timeout, EOF or error.
  bool receive(std::chrono::milliseconds timeout = http_wait_limit) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  bool eof() const { return eof_; }

  // True when the server closes the connection within the timeout (bytes
  // before the end are read and dropped).
  bool closed_by_server(std::chrono::milliseconds timeout = http_wait_limit) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      buffer_.clear();
      if (!receive(left) && !eof_) return false;
    }
    return true;
  }

  // A whole response with a Content-Length (or none: 204).
  std::optional<Response> response(std::chrono::milliseconds timeout = http_wait_limit) {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!receive(timeout)) return std::nullopt;
    Response r = parse_head(buffer_.substr(0, end));
    buffer_.erase(0, end + 4);
    std::size_t length = 0;
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) length = std::stoul(it->second);
    while (buffer_.size() < length)
      if (!receive(timeout)) return std::nullopt;
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }

  // The head of a streamed response; the body then comes through next_event().
  std::optional<Response> stream_head(std::chrono::milliseconds timeout = http_wait_limit) {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!receive(timeout)) return std::nullopt;
    Response r = parse_head(buffer_.substr(0, end));
    buffer_.erase(0, end + 4);
    return r;
  }

  // The next SSE event (or comment-only block) of a chunked event stream.
  std::optional<Event> next_event(std::chrono::milliseconds timeout = http_wait_limit) {
    while (true) {
      dechunk();
      if (auto end = text_.find("\n\n"); end != std::string::npos) {
        std::string block = text_.substr(0, end);
        text_.erase(0, end + 2);
        return parse_event(block);
      }
      if (stream_ended_ || !receive(timeout)) return std::nullopt;
    }
  }
  // The next event that carries a message: heartbeats and the retry field
  // are skipped.
  std::optional<Event> next_message(std::chrono::milliseconds timeout = http_wait_limit) {
    while (auto e = next_event(timeout))
      if (!e->data.empty() || !e->event.empty()) return e;
    return std::nullopt;
  }
  // For streams that are not chunked: waits until the raw bytes hold `text`.
  bool wait_for_raw(const std::string& text, std::chrono::milliseconds timeout = http_wait_limit) {
    while (buffer_.find(text) == std::string::npos)
      if (!receive(timeout)) return false;
    return true;
  }

  bool stream_ended() {
    dechunk();
    return stream_ended_;
  }

 private:
  static Response parse_head(const std::string& head) {
    Response r;
    std::size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.size() >= 12) r.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      std::size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::size_t v = line.find_first_not_of(' ', colon + 1);
        r.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = next + 2;
    }
    return r;
  }

  static Event parse_event(const std::string& block) {
    Event e;
    std::size_t pos = 0;
    bool first_data = true;
    while (pos <= block.size()) {
      std::size_t next = block.find('\n', pos);
      if (next == std::string::npos) next = block.size();
      std::string line = block.substr(pos, next - pos);
      pos = next + 1;
      if (line.empty()) continue;
      if (line[0] == ':') {
        e.comments.push_back(line.substr(1));
        continue;
      }
      std::size_t colon = line.find(':');
      std::string field = line.substr(0, colon);
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
      if (field == "data") {
        if (!first_data) e.data += "\n";
        e.data += value;
        first_data = false;
      } else if (field == "id") {
        e.id = value;
        e.has_id = true;
      } else if (field == "event") {
        e.event = value;
      }
    }
    return e;
  }

  void dechunk() {
    while (!stream_ended_) {
      std::size_t line_end = buffer_.find("\r\n");
      if (line_end == std::string::npos) return;
      std::size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
      if (buffer_.size() < line_end + 2 + size + 2) return;
      text_ += buffer_.substr(line_end + 2, size);
      buffer_.erase(0, line_end + 2 + size + 2);
      if (size == 0) stream_ended_ = true;
    }
  }

  int fd_ = -1;
  std::string buffer_;  // raw bytes received
  std::string text_;    // de-chunked event-stream text
  bool eof_ = false;
  bool stream_ended_ = false;
};

}  // namespace livecast_test
