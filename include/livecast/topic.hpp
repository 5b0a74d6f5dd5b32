// A topic (a room) as an embedder sees it: its name, latest value, history
// and presence. Get one with Broker::topic(name); publish with
// Broker::publish. Offsets, history and the latest value belong to the
// Backend, so every instance sharing one (Redis) gives the same answers.
//
// A Topic is a small value that names the topic; it holds no subscribers and
// no data, and must not outlive its Broker. Handlers run on any thread and
// must not block.
#pragma once

#include <livecast/backend.hpp>
#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

class Broker;

class Topic {
 public:
  using LatestHandler = std::function<void(std::error_code, std::optional<Publication> latest, StreamPosition head)>;

  const std::string& name() const noexcept { return name_; }

  // The latest publication (nullopt when the topic never had one) and the
  // topic's head (epoch and last offset).
  void latest(LatestHandler done) const;
  // The publications after `since` when history still holds them all
  // (result.recovered), else the latest value only, as a subscriber
  // resuming from `since` would get them.
  void history(const StreamPosition& since, Backend::ReadHandler done) const;
  // Subscriptions over every instance sharing the backend (see Broker::presence).
  void presence(Backend::PresenceHandler done) const;

 private:
  friend class Broker;
  Topic(Broker& broker, std::string name) : broker_(&broker), name_(std::move(name)) {}

  Broker* broker_;
  std::string name_;
};

LIVECAST_END_NAMESPACE
