// PublishExchange: a POST to HttpTransportSettings::publish_path, from the
// authenticated request to the answer with the backend's offsets. The body's
// format is publish_request.hpp's; this is the exchange around it.
//
// A batch is all or nothing as far as the server can decide: every item is
// read, sized and authorized (SessionHost::check_publish) before the first
// is published, so a refused topic (403), a bad one (400) or an oversized
// payload (413) publishes nothing. Then each is handed to Broker::publish in
// order; the answer waits for the backend to take (or fail) every one. If it
// fails some (Redis went away mid-batch), the answer is 503 with the offsets
// of those it took and null for the others: the client retries those.
//
// Threads: on the connection's shard thread; the backend's answers (any
// thread) are posted there.
#pragma once

#include "http_connection.hpp"
#include "http_exchanges.hpp"
#include "publish_request.hpp"

#include <livecast/broker.hpp>
#include <livecast/config.hpp>
#include <livecast/principal.hpp>

#include <asio/steady_timer.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class PublishExchange final : public HttpExchange, public std::enable_shared_from_this<PublishExchange> {
 public:
  // The request was authenticated (and within its client's rate): reads the
  // body, checks every item, then publishes them or answers with a refusal.
  static void start(const HttpExchangeContext& context, HttpConnection& connection, Broker& broker,
                    const Principal& principal);

  PublishExchange(const HttpExchangeContext& context, HttpConnection& connection, std::size_t items)
      : context_(context), connection_(connection), timer_(connection.context()), offsets_(items) {}

  bool fill(HttpOutput& out) override;
  void shut_down() override;
  void end() override;

 private:
  void publish_all(Broker& broker, std::vector<PublishItem>& items);
  void on_published(std::size_t item, std::error_code ec, std::uint64_t offset);
  // Every item has its answer (or `failure` ends the wait): answer 200, or
  // the failure with the offsets known so far.
  void answer(std::optional<Errc> failure = std::nullopt);

  const HttpExchangeContext& context_;
  HttpConnection& connection_;  // outlives the exchange until end()
  asio::steady_timer timer_;    // the backend's time to answer
  std::vector<std::optional<std::uint64_t>> offsets_;
  std::size_t waiting_ = 0;              // items published, not yet answered
  std::optional<Errc> failed_;           // the first failure of an item
  int status_ = 0;                       // 0 until answered
  std::string body_;
  bool ended_ = false;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
