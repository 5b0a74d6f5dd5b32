// The benchmark servers' publisher (benchmarks/grid_publisher.hpp) must let
// its io_context's run() return once stopped, even when a tick is already due
// or stop() comes from inside `publish`: livecast-bench-server did not exit
// on SIGTERM at 2,000 publications/s because a tick whose completion was
// already queued when the signal handler cancelled the timer re-armed it.
#include "grid_publisher.hpp"

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto bound = std::chrono::seconds(5);  // run_for's guard: a hang fails instead of blocking

}  // namespace

TEST_CASE("stop() with the next tick's completion already queued: run() returns") {
  asio::io_context io;
  int published = 0;
  livecast_bench::GridPublisher publisher(io, 1000.0, 64, false, [&](const std::string&) { ++published; });
  REQUIRE(published == 1);  // the first tick is published at once
  // A timer that expired earlier than the publisher's next tick stops it, as
  // the SIGTERM handler does: both completions are collected in one pass of
  // the reactor, this one first, so the tick's runs after the stop.
  asio::steady_timer stopper(io);
  stopper.expires_at(Clock::now() - std::chrono::seconds(1));
  stopper.async_wait([&](std::error_code) { publisher.stop(); });
  // Time passes (no event to wait for): the tick 1 ms later is due too.
  const auto until = Clock::now() + std::chrono::milliseconds(5);
  while (Clock::now() < until) {
  }
  io.run_for(bound);
  CHECK(io.stopped());  // ran out of work, not out of time
  CHECK(published <= 2);
}

TEST_CASE("stop() from inside publish: no further tick, run() returns") {
  asio::io_context io;
  int published = 0;
  livecast_bench::GridPublisher* self = nullptr;
  livecast_bench::GridPublisher publisher(io, 100000.0, 64, false, [&](const std::string&) {
    if (++published == 3 && self) self->stop();
  });
  self = &publisher;
  io.run_for(bound);
  CHECK(io.stopped());
  CHECK(published == 3);
}

TEST_CASE("a paused publisher stopped before its first SIGUSR2 publishes nothing") {
  asio::io_context io;
  int published = 0;
  livecast_bench::GridPublisher publisher(io, 100.0, 64, true, [&](const std::string&) { ++published; });
  asio::post(io, [&] { publisher.stop(); });
  io.run_for(bound);
  CHECK(io.stopped());
  CHECK(published == 0);
}
