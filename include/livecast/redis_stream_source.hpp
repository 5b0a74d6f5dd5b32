// Publications fed from a Redis Stream through a consumer group: the durable
// pipeline where producers XADD events and any number of livecast instances
// share the work. Each entry is mapped to a topic and a JSON payload,
// published through the Broker, and acknowledged (XACK) only once the
// Broker's backend accepted the publication. Link livecast::redis.
//
// Delivery is at least once: an entry read but not acknowledged (the
// instance crashed, or the publication failed) is published again, by this
// consumer name after a restart, or after the failure; an acknowledged entry
// is never published again. Entries are published in stream order; entries
// read again from the pending list go one at a time, each once the one
// before it was accepted. New entries are pipelined, so the one exception is
// a backend that comes back between two of them: a failed entry is then
// retried after a later one that was accepted.
#pragma once

#include <livecast/broker.hpp>
#include <livecast/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// One stream entry as XREADGROUP returned it.
struct StreamEntry {
  std::string id;  // "<ms>-<seq>"
  std::vector<std::pair<std::string, std::string>> fields;

  // The value of the first field called `name`, or null.
  const std::string* field(std::string_view name) const noexcept {
    for (const auto& [key, value] : fields)
      if (key == name) return &value;
    return nullptr;
  }
};

// What an entry becomes: `json` goes through the Broker's validation, so an
// entry with an invalid payload or topic is refused (and acknowledged, since
// it would be refused forever).
struct StreamPublication {
  std::string topic;
  std::string json;
};

struct RedisStreamSourceSettings {
  // redis://[[user]:password@]host[:port][/db], as for RedisBackend.
  std::string url = "redis://127.0.0.1:6379";
  std::string stream;           // the stream's key; required
  std::string group = "livecast";
  // This instance's name in the group; required, and stable across restarts:
  // entries read but not acknowledged are found again under it.
  std::string consumer;
  // Where the group starts when it does not exist yet: "0" for the whole
  // stream (nothing XADDed before the first start is lost), "$" for entries
  // added from now on.
  std::string start_id = "0";
  std::size_t batch_size = 100;           // entries per XREADGROUP
  std::size_t max_unacknowledged = 1000;  // published, not yet acknowledged: reading pauses beyond it
  // How long one XREADGROUP waits for new entries; below command_timeout.
  std::chrono::milliseconds block{std::chrono::seconds(2)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
  std::chrono::milliseconds command_timeout{std::chrono::seconds(5)};
  // After a failed publication, entries are read again from the consumer's
  // pending list this long after the last ones in flight were settled.
  std::chrono::milliseconds retry_delay{std::chrono::milliseconds(500)};
  // Entry -> publication; nullopt skips the entry (acknowledged and counted
  // as rejected). Default: the fields "topic" and "data".
  std::function<std::optional<StreamPublication>(const StreamEntry&)> map;
  // Rejected entries, failed publications and lost connections, from the
  // source's thread. Keep it short.
  std::function<void(const std::string& what, std::error_code)> on_error;
};

struct RedisStreamSourceMetrics {
  std::uint64_t entries_read = 0;      // delivered by XREADGROUP, redeliveries included
  std::uint64_t redelivered = 0;       // read again from the consumer's pending list
  std::uint64_t published = 0;         // accepted by the Broker's backend
  std::uint64_t acknowledged = 0;      // XACKed
  std::uint64_t rejected = 0;          // unmappable or refused for good; acknowledged, not published
  std::uint64_t publish_failures = 0;  // not accepted (backend away): left pending, retried
  std::uint64_t connection_losses = 0;
};

class RedisStreamSource {
 public:
  // Throws std::invalid_argument on a malformed URL, an empty stream or
  // consumer name, or a block not below command_timeout. `broker` must
  // outlive the source.
  RedisStreamSource(Broker& broker, RedisStreamSourceSettings settings);
  ~RedisStreamSource();  // stop()
  RedisStreamSource(const RedisStreamSource&) = delete;
  RedisStreamSource& operator=(const RedisStreamSource&) = delete;

  // Connects (creating the group with MKSTREAM when needed) and reads: first
  // this consumer's pending entries, then new ones. Runs on a thread of its own.
  void start();
  // Stops reading, waits (up to command_timeout) for publications in flight
  // to be accepted and acknowledged, then disconnects. Entries still not
  // acknowledged are published again on the next start.
  void stop();

  RedisStreamSourceMetrics metrics() const;

 private:
  class Impl;
  // Shared with the Broker's publish callbacks, which may outlive a stop()
  // that gave up waiting for them.
  std::shared_ptr<Impl> impl_;
};

LIVECAST_END_NAMESPACE
