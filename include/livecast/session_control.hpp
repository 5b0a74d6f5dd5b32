// Host control of sessions: what the host sees of the sessions open on a
// broker (SessionInfo, from Broker::sessions), and the hooks it may give to
// hear of them opening, subscribing, unsubscribing and closing
// (BrokerSettings::hooks). Closing a principal's sessions when its token is
// revoked is Broker::close_sessions.
//
// Threads: every hook runs on the thread of the shard that owns the session,
// in the middle of the broker's work on it: it must be cheap and must not
// block (count, log, post elsewhere). The Session it gets is valid only
// during the call.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/session.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// One open session, copied on its shard's thread at the time of asking.
struct SessionInfo {
  std::uint64_t id = 0;                        // Session::id(), unique within the broker
  std::string principal_id;
  std::size_t shard = 0;
  std::string protocol;                        // the Protocol's name, e.g. "livecast.v1"
  std::vector<std::string> subscriptions;      // server-side joins included
  std::chrono::system_clock::time_point opened_at{};
  bool closing = false;                        // asked to close; the transport has not reported it closed yet
};

// A principal's sessions over every shard, in order of id. `sessions` holds
// at most the `max_sessions` asked for; `total` counts them all.
struct SessionList {
  std::vector<SessionInfo> sessions;
  std::size_t total = 0;
};

// What the host hears of sessions. Each hook is optional and runs on the
// session's shard thread; it observes, it decides nothing (deciding is the
// Authenticator's and the Authorizer's). One that throws is counted in
// BrokerMetrics::callback_errors and reported to on_error, and the session
// goes on as if it had returned.
//
// For one session, in order: on_open; on_subscribe for each topic it joins
// (server-side joins first, from inside open); on_unsubscribe for each topic
// it leaves (a client's unsubscribe, a subscribe undone because the backend
// could not read the topic, and at close every topic it still held); then
// on_close. Every on_subscribe is matched by exactly one on_unsubscribe.
struct SessionHooks {
  // After the Authenticator accepted and the session exists, before its
  // server-side joins.
  std::function<void(const Session&)> on_open;
  // The session joined `topic` (authorized; its history may still be on the
  // way).
  std::function<void(const Session&, const std::string& topic)> on_subscribe;
  std::function<void(const Session&, const std::string& topic)> on_unsubscribe;
  // The transport reported the connection closed. `code` is the code the
  // server closed it with (Session::close: slow consumer, token expired,
  // close_sessions, ...); nullopt when the client or the network ended it.
  std::function<void(const Session&, std::optional<CloseCode> code)> on_close;
};

LIVECAST_END_NAMESPACE
