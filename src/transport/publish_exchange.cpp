#include "publish_exchange.hpp"

#include <asio/post.hpp>

#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

constexpr std::string_view no_store = "Cache-Control: no-store\r\n";

int status_of(Errc e) noexcept {
  switch (e) {
    case Errc::invalid_json:
    case Errc::bad_request:
    case Errc::invalid_topic:
    case Errc::invalid_payload: return 400;
    case Errc::forbidden: return 403;
    case Errc::message_too_large: return 413;
    case Errc::internal_error: return 500;
    default: return 503;  // backend_unavailable, shutting_down
  }
}

std::atomic<std::uint64_t>& refusal_counter(HttpCounters& c, Errc e) noexcept {
  switch (status_of(e)) {
    case 400: return c.refused_bad_parameters;
    case 403:
    case 500: return c.refused_forbidden;
    case 413: return c.refused_too_large;
    default: return e == Errc::shutting_down ? c.refused_shutting_down : c.refused_unavailable;
  }
}

// A refusal before anything was published.
void refuse(const HttpExchangeContext& context, HttpConnection& connection, Errc e, std::string_view message,
            std::optional<std::size_t> item) {
  bump(refusal_counter(context.counters, e));
  context.host.count_error(e);
  connection.respond(status_of(e), "application/json", publish_error_body(e, message, item), no_store);
}

}  // namespace

void PublishExchange::start(const HttpExchangeContext& context, HttpConnection& connection, Broker& broker,
                            const Principal& principal) {
  ParsedPublishRequest request = parse_publish_request(connection.request().body, context.settings.max_publish_batch);
  if (request.error != Errc::ok) {
    refuse(context, connection, request.error, request.message, request.item);
    return;
  }
  // Everything is checked before anything is published.
  const std::size_t max_payload = broker.settings().max_payload_bytes;
  for (std::size_t i = 0; i < request.items.size(); ++i) {
    const PublishItem& item = request.items[i];
    const std::optional<std::size_t> index = request.batch ? std::optional<std::size_t>(i) : std::nullopt;
    if (item.data.size() > max_payload) {
      refuse(context, connection, Errc::message_too_large,
             "\"data\" is over " + std::to_string(max_payload) + " bytes", index);
      return;
    }
    switch (Errc e = context.host.check_publish(item.topic, principal)) {
      case Errc::ok: break;
      case Errc::forbidden: {
        std::string message = "not allowed to publish on ";
        append_json_string(message, item.topic);  // quoted, and printable whatever it holds
        refuse(context, connection, e, message, index);
        return;
      }
      case Errc::invalid_topic: refuse(context, connection, e, "invalid topic name", index); return;
      default:
        refuse(context, connection, Errc::internal_error,
               "the server could not decide on this publication; try again", index);
        return;
    }
  }
  auto exchange = std::make_shared<PublishExchange>(context, connection, request.items.size());
  connection.serve(exchange);
  exchange->publish_all(broker, request.items);
}

void PublishExchange::publish_all(Broker& broker, std::vector<PublishItem>& items) {
  // A backend that never answers must not hold the request forever.
  timer_.expires_after(context_.settings.request_timeout);
  timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
    if (!ec && !self->ended_ && !self->status_) self->answer(Errc::backend_unavailable);
  });
  asio::io_context& shard = connection_.context();
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::weak_ptr<PublishExchange> weak = shared_from_this();
    ++waiting_;
    std::error_code ec = broker.publish(items[i].topic, items[i].data,
                                        [&shard, weak, i](std::error_code ec, std::uint64_t offset) {
                                          asio::post(shard, [weak, i, ec, offset] {
                                            if (auto self = weak.lock()) self->on_published(i, ec, offset);
                                          });
                                        });
    if (ec) {
      // Refused before the backend (the broker stops): the rest are not sent.
      --waiting_;
      failed_ = static_cast<Errc>(ec.value());
      break;
    }
  }
  if (waiting_ == 0) answer(failed_);
}

void PublishExchange::on_published(std::size_t item, std::error_code ec, std::uint64_t offset) {
  if (ended_ || status_) return;
  --waiting_;
  if (ec) {
    if (!failed_) failed_ = ec.category() == livecast_category() ? static_cast<Errc>(ec.value())
                                                                  : Errc::backend_unavailable;
  } else {
    offsets_[item] = offset;
    bump(context_.counters.publish_publications);
  }
  if (waiting_ == 0) answer(failed_);
}

void PublishExchange::answer(std::optional<Errc> failure) {
  if (status_) return;
  timer_.cancel();
  if (!failure) {
    std::vector<std::uint64_t> offsets;
    offsets.reserve(offsets_.size());
    for (const auto& o : offsets_) offsets.push_back(o.value_or(0));
    status_ = 200;
    body_ = publish_answer_body(offsets);
    bump(context_.counters.publish_requests);
  } else {
    Errc e = *failure;
    if (status_of(e) != 503) e = Errc::backend_unavailable;  // only the backend fails after the checks
    status_ = 503;
    bump(refusal_counter(context_.counters, e));
    context_.host.count_error(e);
    std::size_t taken = 0;
    for (const auto& o : offsets_) taken += o.has_value();
    const std::string message = e == Errc::shutting_down ? "the server is shutting down"
                                : taken == 0            ? "the backend took no publication; retry"
                                                        : "the backend took some publications (see offsets; null: "
                                                          "not published); retry the others";
    body_ = publish_error_body(e, message, std::nullopt, &offsets_);
  }
  connection_.write_ready();
}

bool PublishExchange::fill(HttpOutput& out) {
  if (!status_) return false;
  std::string extra(no_store);
  if (status_ == 503) extra += "Retry-After: 1\r\n";
  out.text(connection_.response_head(status_, "application/json", body_.size(), extra));
  out.text(body_);
  return true;
}

// The transport stops: answer with what the backend took so far.
void PublishExchange::shut_down() {
  if (!status_) answer(Errc::shutting_down);
}

void PublishExchange::end() {
  ended_ = true;
  timer_.cancel();
}

}  // namespace detail
LIVECAST_END_NAMESPACE
