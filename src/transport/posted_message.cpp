// PostedMessage: one client message (publish, ping) in a transient session,
// answered with what answers it: its reply or error, and errors that name no
// request. Subscriptions do not outlive the request, so subscribe and
// unsubscribe are refused here.
#include "http_exchanges.hpp"

#include <asio/post.hpp>

#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

void PostedMessage::start(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol,
                          Principal principal) {
  const std::string& body = connection.request().body;
  const Protocol& speaks = context.host.protocol(protocol);
  DecodeResult decoded = speaks.decode(body);
  if (decoded.request && (decoded.request->op == ClientRequest::Op::subscribe ||
                          decoded.request->op == ClientRequest::Op::unsubscribe)) {
    bump(context.counters.refused_bad_parameters);
    context.host.count_error(Errc::bad_request);
    const MessageBatchFraming framing = speaks.batch_framing(std::nullopt);
    FramePtr error =
        speaks.encode_error(decoded.id, Errc::bad_request, "subscribe and unsubscribe go through GET /poll or /sse");
    connection.respond(200, framing.content_type, framing.head + error->bytes + framing.tail,
                       "Cache-Control: no-store\r\n");
    return;
  }
  auto post = std::make_shared<PostedMessage>(context, connection, protocol);
  connection.serve(post);
  post->id_ = decoded.id;
  post->open(std::move(principal));
  if (post->session_) context.host.handle_message(*post->session_, body);
  if (post->id_) {
    post->answer_after(context.settings.request_timeout);
    post->frames_ready();
  } else {
    // No reply will name this request: answer with what it caused at once
    // (errors are queued synchronously).
    asio::post(connection.context(), [post] {
      if (!post->ended_) post->answer();
    });
  }
}

bool PostedMessage::collect() {
  if (!session_) return false;
  taken_.clear();
  host().take_frames(*session_, taken_);
  bool answered = false;
  for (FramePtr& frame : taken_) {
    host().frames_written(*session_, frame->bytes.size());
    // Server-side joins also speak on this transient session; only what
    // answers the request (or names no request, like rate_limited) is kept.
    if (frame->is_publication() || frame->starts_subscription()) continue;
    if (frame->request_id && id_ && *frame->request_id == *id_) answered = true;
    const bool unaddressed_error = frame->kind == Frame::Kind::error && !frame->request_id;
    if (frame->request_id != id_ && !unaddressed_error) continue;
    frames_.push_back(std::move(frame));
  }
  taken_.clear();
  return answered;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
