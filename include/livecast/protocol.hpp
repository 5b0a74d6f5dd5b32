// The wire protocol seam: how client messages are decoded and how replies and
// publications are encoded. `livecast.v1` (docs/protocol.md) is the built-in
// one; a Socket.IO-compatible protocol can be added beside it without touching
// Broker, Topic or Session. Protocols are stateless and thread-safe.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/json.hpp>
#include <livecast/publication.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE

// A decoded client request.
struct ClientRequest {
  enum class Op { subscribe, unsubscribe, publish, ping };
  Op op = Op::ping;
  // Echoed in the reply. Without one, subscribe still replies (with no id);
  // ping, unsubscribe and publish send no reply on success.
  std::optional<std::int64_t> id;
  std::string topic;                       // subscribe, unsubscribe, publish
  std::optional<StreamPosition> recover;   // subscribe: resume after this position
  std::string data;                        // publish: the JSON text of "data"
};

// decode()'s answer: a request, or an error to reply with (and the request id
// when it could be read, so the client can match the error to its request).
struct DecodeResult {
  std::optional<ClientRequest> request;
  Errc error = Errc::ok;
  std::string message;
  std::optional<std::int64_t> id;

  static DecodeResult ok(ClientRequest r) { return {std::move(r), Errc::ok, {}, {}}; }
  static DecodeResult fail(Errc e, std::string why, std::optional<std::int64_t> id = {}) {
    return {std::nullopt, e, std::move(why), id};
  }
};

class Protocol {
 public:
  virtual ~Protocol() = default;
  // Also the WebSocket subprotocol name offered by clients.
  virtual std::string_view name() const noexcept = 0;
  virtual DecodeResult decode(std::string_view message) const = 0;
  // A publication, built once and shared by every session on this protocol.
  virtual FramePtr encode_publication(const Publication& publication) const = 0;
  // A success reply; `result` is a JSON object. Without an id it is a
  // server-initiated notice (e.g. a server-side join).
  virtual FramePtr encode_reply(std::optional<std::int64_t> id, const Json& result) const = 0;
  virtual FramePtr encode_error(std::optional<std::int64_t> id, Errc code, std::string_view message) const = 0;
};

// The livecast.v1 JSON protocol. Defined in src/protocol/livecast_v1.cpp.
std::shared_ptr<const Protocol> make_livecast_v1_protocol();

LIVECAST_END_NAMESPACE
