// Topic, the embedder's view of one topic: its latest value, history and
// presence, read from the backend through the broker (topic.hpp).
#include "broker_impl.hpp"

#include <livecast/topic.hpp>

#include <optional>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

void Topic::latest(LatestHandler done) const {
  Broker::Impl& impl = *broker_->impl_;
  if (Errc e = impl.validate_topic(name_); e != Errc::ok) {
    impl.guarded("Topic::latest handler", [&] { done(make_error_code(e), std::nullopt, {}); });
    return;
  }
  impl.backend().read(name_, std::nullopt, 0, [&impl, done = std::move(done)](ReadResult r) {
    std::optional<Publication> latest;
    if (!r.publications.empty()) latest = std::move(r.publications.back());
    impl.guarded("Topic::latest handler", [&] { done(r.error, std::move(latest), std::move(r.head)); });
  });
}

void Topic::history(const StreamPosition& since, Backend::ReadHandler done) const {
  Broker::Impl& impl = *broker_->impl_;
  if (Errc e = impl.validate_topic(name_); e != Errc::ok) {
    ReadResult r;
    r.error = make_error_code(e);
    impl.guarded("Topic::history handler", [&] { done(std::move(r)); });
    return;
  }
  impl.backend().read(name_, since, impl.settings().recovery.max_publications, [&impl, done = std::move(done)](ReadResult r) {
    impl.guarded("Topic::history handler", [&] { done(std::move(r)); });
  });
}

void Topic::presence(Backend::PresenceHandler done) const { broker_->presence(name_, std::move(done)); }

LIVECAST_END_NAMESPACE
