// A deliberately different wire protocol for tests: plain text lines instead
// of JSON, words separated by single spaces. It proves that transports carry
// any Protocol, since none of them can have learnt its format.
//
//   client:  SUB <id> <topic> [<epoch> <offset>]   UNSUB <id> <topic>
//            PUB <id> <topic> <json>               PING <id>   REFRESH <id> <token>
//   server:  MSG <topic> <offset> <json>
//            SUBSCRIBED <id|-> <topic> <epoch> <offset> <0|1>
//            UNSUBSCRIBED <id> <topic>   PUBLISHED <id> <topic> <offset>
//            PONG <id>                   ERROR <id|-> <code> <message>
//            REFRESHED <id> <unix ms|->
//   a batch over HTTP: "CURSOR <cursor>\n" (polls only), then one message per line.
#pragma once

#include <livecast/protocol.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livecast_test {

class LineProtocol final : public livecast::Protocol {
 public:
  std::string_view name() const noexcept override { return "line.test"; }

  livecast::DecodeResult decode(std::string_view message) const override {
    using livecast::ClientRequest;
    using livecast::DecodeResult;
    using livecast::Errc;
    std::vector<std::string_view> words;
    std::size_t start = 0;
    while (start <= message.size() && words.size() < 3) {
      std::size_t end = message.find(' ', start);
      if (end == std::string_view::npos) end = message.size();
      words.push_back(message.substr(start, end - start));
      start = end + 1;
    }
    // The fourth word on keeps its spaces (a JSON payload, or epoch and offset).
    std::string_view rest = start <= message.size() ? message.substr(start) : std::string_view();
    if (words.size() < 2) return DecodeResult::fail(Errc::bad_request, "expected: <OP> <id> ...");
    std::optional<std::int64_t> id = number(words[1]);
    if (!id) return DecodeResult::fail(Errc::bad_request, "the id must be a number");
    ClientRequest r;
    r.id = id;
    const std::string_view op = words[0];
    if (op == "PING") {
      r.op = ClientRequest::Op::ping;
      return DecodeResult::ok(std::move(r));
    }
    if (op == "REFRESH") {
      if (words.size() < 3 || words[2].empty()) return DecodeResult::fail(Errc::bad_request, "a token is missing", id);
      r.op = ClientRequest::Op::refresh;
      r.token = std::string(words[2]);
      return DecodeResult::ok(std::move(r));
    }
    if (words.size() < 3 || words[2].empty()) return DecodeResult::fail(Errc::bad_request, "a topic is missing", id);
    r.topic = std::string(words[2]);
    if (op == "SUB") {
      r.op = ClientRequest::Op::subscribe;
      if (!rest.empty()) {
        const std::size_t space = rest.find(' ');
        auto offset = space == std::string_view::npos ? std::nullopt : number(rest.substr(space + 1));
        if (!offset || *offset < 0) return DecodeResult::fail(Errc::bad_request, "expected: <epoch> <offset>", id);
        r.recover = livecast::StreamPosition{std::string(rest.substr(0, space)), static_cast<std::uint64_t>(*offset)};
      }
    } else if (op == "UNSUB") {
      r.op = ClientRequest::Op::unsubscribe;
    } else if (op == "PUB") {
      r.op = ClientRequest::Op::publish;
      r.data = std::string(rest);
    } else {
      return DecodeResult::fail(Errc::unknown_op, "unknown op", id);
    }
    DecodeResult result = DecodeResult::ok(std::move(r));
    result.id = id;
    return result;
  }

  livecast::MessageBatchFraming batch_framing(std::optional<std::string_view> cursor) const override {
    livecast::MessageBatchFraming f;
    f.content_type = "text/plain; charset=utf-8";
    if (cursor) f.head = "CURSOR " + std::string(*cursor) + "\n";
    f.separator = "\n";
    f.tail = "\n";
    return f;
  }

 protected:
  std::string encode_publication_text(const livecast::Publication& p) const override {
    return "MSG " + p.topic + " " + std::to_string(p.offset) + " " + (p.data ? *p.data : std::string("null"));
  }
  std::string encode_subscribed_text(std::optional<std::int64_t> id, const std::string& topic,
                                     const livecast::StreamPosition& head, bool recovered) const override {
    return "SUBSCRIBED " + id_text(id) + " " + topic + " " + head.epoch + " " + std::to_string(head.offset) +
           (recovered ? " 1" : " 0");
  }
  std::string encode_unsubscribed_text(std::int64_t id, const std::string& topic) const override {
    return "UNSUBSCRIBED " + std::to_string(id) + " " + topic;
  }
  std::string encode_published_text(std::int64_t id, const std::string& topic, std::uint64_t offset) const override {
    return "PUBLISHED " + std::to_string(id) + " " + topic + " " + std::to_string(offset);
  }
  std::string encode_pong_text(std::int64_t id) const override { return "PONG " + std::to_string(id); }
  std::string encode_refreshed_text(std::int64_t id,
                                    std::optional<std::chrono::system_clock::time_point> expires_at) const override {
    using namespace std::chrono;
    return "REFRESHED " + std::to_string(id) + " " +
           (expires_at ? std::to_string(duration_cast<milliseconds>(expires_at->time_since_epoch()).count()) : "-");
  }
  std::string encode_error_text(std::optional<std::int64_t> id, livecast::Errc code,
                                std::string_view message) const override {
    return "ERROR " + id_text(id) + " " + livecast::to_wire_name(code) + " " + std::string(message);
  }

 private:
  static std::string id_text(std::optional<std::int64_t> id) { return id ? std::to_string(*id) : "-"; }
  static std::optional<std::int64_t> number(std::string_view text) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
  }
};

inline std::shared_ptr<const livecast::Protocol> make_line_protocol() { return std::make_shared<LineProtocol>(); }

}  // namespace livecast_test
