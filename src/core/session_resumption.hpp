// Resuming a session after its connection dropped, for protocols that do it
// their way (Protocol::resumes_sessions: Socket.IO's connection state
// recovery). Sans-I/O: what a session remembers, what it leaves behind when
// it closes, and where each of its topics resumes; the broker moves the
// record through the backend (Backend::keep_session / take_session).
//
// How it works. A resumable session's client learns a private resume id
// when it connects, and every publication it receives carries a token
// naming it (publication_token: its topic and offset). One connection
// delivers in order, so when the client comes back with the id and the
// token of the last publication it received, everything the session queued
// before that publication reached it, and what was queued after may not
// have. The session remembered the last publications it queued (a bounded
// ring, in order) and where each subscription stood; from that, each topic
// resumes just before its first publication queued after the client's last
// one, or after the last one queued when it had none after it. When the
// client's last publication is no longer in the ring (it lagged by more
// than the ring holds), nothing can tell, and the session is not resumed.
//
// Threads: a tracker on its session's shard thread; the rest anywhere.
#pragma once

#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// What a closed resumable session leaves for its client's return.
struct ResumeRecord {
  struct Subscription {
    std::uint32_t id = 0;          // names it in `queued`
    std::string topic;
    StreamPosition start;          // where it (last) started: the head it was given
    std::uint64_t last_queued = 0; // the offset of the last publication queued (start.offset if none)
  };
  std::string principal_id;        // only the same principal may resume it
  std::string session_name;        // its public name (socket.id), which a resumed session keeps
  std::vector<Subscription> subscriptions;
  // The last publications queued, oldest first: (subscription id, offset).
  std::vector<std::pair<std::uint32_t, std::uint64_t>> queued;
  // False when older publications fell out of `queued`: a client that
  // received none of those left in it cannot be placed.
  bool complete = true;

  // A compact text for the backend, and back; parse() refuses anything it
  // did not write (a corrupt or foreign value is "not resumable").
  std::string serialize() const;
  static std::optional<ResumeRecord> parse(std::string_view text);
};

// Where each topic of `record` resumes (the position after which its
// publications are replayed), for a client whose last publication received
// is `last_token` ("" when it received none); nullopt when the record
// cannot tell (see above).
std::optional<std::vector<std::pair<std::string, StreamPosition>>> resume_positions(const ResumeRecord& record,
                                                                                 std::string_view last_token);

// The session's side: told of every subscription's start and of every
// publication queued, it keeps the ring and the positions.
class ResumeTracker {
 public:
  // `capacity`: publications remembered (at least 1).
  explicit ResumeTracker(std::size_t capacity);

  // A subscription to `topic` started (or started over) at `head`.
  void started(const std::string& topic, const StreamPosition& head);
  void left(std::string_view topic);
  // A publication of `topic` at `offset` in `epoch` ("" if unknown) was
  // queued for the client.
  void queued(std::string_view topic, std::string_view epoch, std::uint64_t offset);

  ResumeRecord record(std::string principal_id, std::string session_name) const;

 private:
  ResumeRecord::Subscription* find(std::string_view topic) noexcept;

  std::size_t capacity_;
  std::uint32_t next_id_ = 0;
  std::vector<ResumeRecord::Subscription> subscriptions_;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> ring_;  // grows to capacity_, then wraps
  std::size_t next_ = 0;                                         // the slot written next once full
  bool wrapped_ = false;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
