// livecast-loadgen: the load generator of benchmarks/run. It opens many
// WebSocket connections to one server (livecast, Socket.IO or ws), subscribes
// them round robin to topics t0..t{K-1}, and measures deliveries, end-to-end
// latency (from the "ts" each publication carries: its intended publication
// time, so a late server is charged for the wait) and gaps in "seq", plus the
// server's RSS and CPU from /proc.
//
//   livecast-loadgen --protocol livecast|socketio|ws --port 9000[,9001,...]
//       --connections 5000 --topics 1 [--processes N] [--token T]
//       [--warmup-seconds 1] [--measure-seconds 3] [--steps 1] [--step-signal]
//       [--start-signal] [--stop-when-saturated] [--server-pid PID[,PID...]] [--label TEXT]
//       [--histogram] [--tls] [--reconnect-storm [--storm-timeout-seconds S]]
//       [--connect-rate PER_S]
//
// --connect-rate: connections are started at that rate over all workers
// (a ramp, issue 15: 18,000 at 3,000/s while publishing), at most
// --in-flight per worker between connect and subscribed; without it, as
// fast as --in-flight allows. setup_s is then the ramp's wall time.
//
// --reconnect-storm (livecast.v1 only): once everyone is subscribed and has
// received a publication (after --warmup-seconds), every client drops its
// connection at once (a TCP reset, as a network blip would) and reconnects,
// subscribing with "recover" set to the epoch and offset it last saw; at most
// --in-flight reconnects per worker are between their connect and their
// reply at a time. Prints one JSON line once every client is caught up (has
// received, after its reply, the publications up to the offset the reply
// named and at least one more after its recover offset) or has failed, or
// after --storm-timeout-seconds: the storm's wall time and the servers' CPU
// seconds over it, with the counts (see README.md).
//
// --tls: every connection speaks TLS (wss://), ALPN http/1.1, the server's
// certificate not verified (a benchmark's self-signed one); each worker holds
// one client context, so TLS session state is never shared between workers.
//
// Prints one JSON line per measurement step on stdout. With --steps S and
// --step-signal, SIGUSR2 goes to every --server-pid after each step; the
// benchmark servers double their publication rate on it, which walks the
// offered load up to saturation without reconnecting. --start-signal sends
// one SIGUSR2 once everyone is connected (to a server started --paused).
// --stop-when-saturated
// ends the walk once doubling the load gained less than 30% deliveries/s or
// the median latency passed a second: past that point a Node server only
// queues, and its memory grows by the excess every second. With
// --past-saturation N the walk goes on to N steps past the one that
// delivered most (2x and 4x its offered load for N = 2): what a server
// holds past saturation (issue 15: at least 90% of its peak).
//
// The parent forks --processes workers (each below the 20,000 descriptor
// limit); a worker owns connections i, i+N, i+2N... on one thread and talks to
// the parent over two pipes: "begin"/"end"/"quit" in, one line of counters
// and histogram out. Source addresses rotate over 127.0.0.1..127.0.0.250 so
// ephemeral ports never run out.
#include "client_frame.hpp"
#include "command_line.hpp"
#include "open_files.hpp"

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

enum class Protocol { livecast, socketio, ws };

struct Options {
  Protocol protocol = Protocol::livecast;
  std::string protocol_name = "livecast";
  std::string host = "127.0.0.1";
  std::vector<unsigned short> ports{9000};
  std::string path;  // default depends on the protocol
  std::string token;
  std::size_t connections = 1000;
  std::size_t topics = 1;
  std::size_t processes = 1;
  std::size_t in_flight = 256;  // handshakes at once per worker
  double connect_rate = 0;      // connections started per second over all workers; 0: as in_flight allows
  double warmup_seconds = 1;
  double measure_seconds = 3;
  double connect_timeout_seconds = 60;
  std::size_t steps = 1;
  bool step_signal = false;
  bool histogram = false;
  bool stop_when_saturated = false;
  std::size_t past_saturation = 0;  // steps measured past the peak once saturated
  bool start_signal = false;
  bool tls = false;
  bool reconnect_storm = false;
  double storm_timeout_seconds = 60;
  std::vector<long> server_pids;
  std::string label;
};

[[noreturn]] void usage(int code) {
  std::cerr
      << "usage: livecast-loadgen [--protocol livecast|socketio|ws] [--host H] [--port P[,P...]] [--path PATH]\n"
         "                        [--token T] [--connections N] [--topics K] [--processes N] [--in-flight N]\n"
         "                        [--connect-rate PER_S]\n"
         "                        [--warmup-seconds S] [--measure-seconds S] [--connect-timeout-seconds S]\n"
         "                        [--steps N] [--step-signal] [--start-signal] [--stop-when-saturated]\n"
         "                        [--past-saturation N]\n"
         "                        [--server-pid PID[,PID...]]\n"
         "                        [--label TEXT] [--histogram] [--tls]\n"
         "                        [--reconnect-storm [--storm-timeout-seconds S]]\n";
  std::exit(code);
}

template <class T>
std::vector<T> parse_list(const std::string& v) {
  std::vector<T> out;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(static_cast<T>(std::stol(item)));
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  livecast_bench::CommandLine flags;
  flags.switches["--step-signal"] = [&] { o.step_signal = true; };
  flags.switches["--histogram"] = [&] { o.histogram = true; };
  flags.switches["--start-signal"] = [&] { o.start_signal = true; };
  flags.switches["--stop-when-saturated"] = [&] { o.stop_when_saturated = true; };
  flags.switches["--tls"] = [&] { o.tls = true; };
  flags.switches["--reconnect-storm"] = [&] { o.reconnect_storm = true; };
  flags.options["--storm-timeout-seconds"] = [&](const std::string& v) { o.storm_timeout_seconds = std::stod(v); };
  auto at_least_1 = [](const std::string& v) { return std::max<std::size_t>(1, std::stoul(v)); };
  flags.options["--protocol"] = [&](const std::string& v) { o.protocol_name = v; };
  flags.options["--host"] = [&](const std::string& v) { o.host = v; };
  flags.options["--port"] = [&](const std::string& v) { o.ports = parse_list<unsigned short>(v); };
  flags.options["--path"] = [&](const std::string& v) { o.path = v; };
  flags.options["--token"] = [&](const std::string& v) { o.token = v; };
  flags.options["--connections"] = [&](const std::string& v) { o.connections = std::stoul(v); };
  flags.options["--topics"] = [&](const std::string& v) { o.topics = at_least_1(v); };
  flags.options["--processes"] = [&](const std::string& v) { o.processes = at_least_1(v); };
  flags.options["--in-flight"] = [&](const std::string& v) { o.in_flight = at_least_1(v); };
  flags.options["--connect-rate"] = [&](const std::string& v) { o.connect_rate = std::max(0.0, std::stod(v)); };
  flags.options["--warmup-seconds"] = [&](const std::string& v) { o.warmup_seconds = std::stod(v); };
  flags.options["--measure-seconds"] = [&](const std::string& v) { o.measure_seconds = std::stod(v); };
  flags.options["--connect-timeout-seconds"] = [&](const std::string& v) { o.connect_timeout_seconds = std::stod(v); };
  flags.options["--past-saturation"] = [&](const std::string& v) { o.past_saturation = std::stoul(v); };
  flags.options["--steps"] = [&](const std::string& v) { o.steps = at_least_1(v); };
  flags.options["--server-pid"] = [&](const std::string& v) { o.server_pids = parse_list<long>(v); };
  flags.options["--label"] = [&](const std::string& v) { o.label = v; };
  flags.parse(argc, argv, usage);
  if (o.protocol_name == "livecast") o.protocol = Protocol::livecast;
  else if (o.protocol_name == "socketio") o.protocol = Protocol::socketio;
  else if (o.protocol_name == "ws") o.protocol = Protocol::ws;
  else usage(2);
  if (o.path.empty())
    o.path = o.protocol == Protocol::livecast   ? "/ws"
             : o.protocol == Protocol::socketio ? "/socket.io/?EIO=4&transport=websocket"
                                                : "/";
  if (!o.token.empty()) o.path += (o.path.find('?') == std::string::npos ? "?token=" : "&token=") + o.token;
  if (o.ports.empty()) usage(2);
  if (o.reconnect_storm && o.protocol != Protocol::livecast) {
    std::cerr << "livecast-loadgen: --reconnect-storm needs --protocol livecast (recover is livecast.v1's)\n";
    std::exit(2);
  }
  return o;
}

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Log-bucketed latency histogram in microseconds: exact below 64 us, then 32
// buckets per power of two (about 3% resolution), so millions of samples cost
// a fixed 10 KiB and histograms of several processes merge by addition.
class Histogram {
 public:
  static constexpr int linear = 64;
  static constexpr int sub_bits = 5;
  static constexpr int buckets = linear + (64 - 6) * (1 << sub_bits);

  void record(std::int64_t v) {
    if (v < 0) v = 0;
    ++counts_[index(static_cast<std::uint64_t>(v))];
    ++total_;
    max_ = std::max(max_, v);
  }
  void add(int bucket, std::uint64_t count) {
    counts_[static_cast<std::size_t>(bucket)] += count;
    total_ += count;
  }
  void merge_max(std::int64_t m) { max_ = std::max(max_, m); }
  void clear() {
    counts_.fill(0);
    total_ = 0;
    max_ = 0;
  }
  std::uint64_t total() const { return total_; }
  std::int64_t max() const { return max_; }
  std::uint64_t count(int b) const { return counts_[static_cast<std::size_t>(b)]; }

  static int index(std::uint64_t v) {
    if (v < linear) return static_cast<int>(v);
    int e = 63 - __builtin_clzll(v);  // v >= 64, so e >= 6
    return linear + (e - 6) * (1 << sub_bits) + static_cast<int>((v >> (e - sub_bits)) & ((1 << sub_bits) - 1));
  }
  // The middle of a bucket's range: what a percentile reports.
  static double value(int b) {
    if (b < linear) return b;
    int e = (b - linear) / (1 << sub_bits) + 6, sub = (b - linear) % (1 << sub_bits);
    double lo = std::ldexp(1.0, e) + sub * std::ldexp(1.0, e - sub_bits);
    return lo + std::ldexp(1.0, e - sub_bits) / 2;
  }
  double percentile(double p) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total_)));
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (int b = 0; b < buckets; ++b) {
      seen += counts_[static_cast<std::size_t>(b)];
      if (seen >= rank) return std::min(value(b), static_cast<double>(max_));
    }
    return static_cast<double>(max_);
  }

 private:
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t total_ = 0;
  std::int64_t max_ = 0;
};

// What a worker counts in a reconnect storm, from the drop on.
struct StormCounters {
  std::size_t resubscribed = 0, not_recovered = 0, caught_up = 0, failed = 0;
  std::uint64_t gaps = 0, duplicates = 0;
  Histogram resubscribe_us, catch_up_us;  // from the drop to the reply, and to caught up
  std::int64_t dropped_at = 0;            // now_micros() at the drop
};

// What a worker counts; reset at "begin", except the connection counters.
struct Counters {
  std::size_t connected = 0, subscribed = 0, failed = 0, closed = 0;
  std::uint64_t deliveries = 0, gaps = 0, duplicates = 0;
  Histogram latency;
  bool measuring = false;
  // --reconnect-storm: clients that hold a position (have received a
  // publication); on_positioned runs each time one more does.
  std::size_t positioned = 0;
  std::function<void()> on_positioned;
  StormCounters storm;
};

// Where a client stood on its topic when its connection dropped: the epoch of
// its subscribe reply, the offset of the last publication it got, and that
// publication's "seq" (to count gaps across the storm).
struct Position {
  std::string epoch;
  std::int64_t offset = 0, seq = -1;
};

// Reads the integer after `key` in [p, end); false when absent.
bool find_int(const char* p, const char* end, const char* key, std::size_t key_len, std::int64_t& out) {
  const char* at = std::search(p, end, key, key + key_len);
  if (at == end) return false;
  at += key_len;
  std::int64_t v = 0;
  bool any = false;
  while (at < end && *at >= '0' && *at <= '9') {
    v = v * 10 + (*at++ - '0');
    any = true;
  }
  out = v;
  return any;
}

// The worker's TLS client context (--tls), made after the fork.
asio::ssl::context* tls_context = nullptr;

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, const Options& o, Counters& c, std::size_t index)
      : socket_(io), options_(o), counters_(c), index_(index),
        topic_("t" + std::to_string(index % o.topics)),
        mask_(static_cast<std::uint32_t>(index * 2654435761u) | 1u) {}

  // A client reconnecting in a storm: it subscribes with "recover" from
  // `from` and counts into counters_.storm.
  Client(asio::io_context& io, const Options& o, Counters& c, std::size_t index, Position from)
      : Client(io, o, c, index) {
    resume_ = std::move(from);
    position_ = *resume_;
    last_seq_ = resume_->seq;
  }

  // `done` runs once, when the client is subscribed or has failed.
  // `settled` (storm reconnects only) runs once, with true when the client
  // has caught up, false when it failed or was closed before.
  void start(std::function<void()> done, std::function<void(bool)> settled = nullptr) {
    done_ = std::move(done);
    settled_ = std::move(settled);
    asio::error_code ec;
    socket_.open(asio::ip::tcp::v4(), ec);
    // Let connect() pick the source port, knowing the destination: a port
    // picked at bind() time must be unique per source address alone, and the
    // kernel's search for one slows down as tens of thousands are taken.
    if (!ec) {
      int on = 1;
      ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
    }
    auto source = asio::ip::make_address_v4(0x7F000001u + static_cast<unsigned>(index_ % 250));
    if (!ec) socket_.bind(asio::ip::tcp::endpoint(source, 0), ec);
    if (ec) return fail();
    asio::ip::tcp::endpoint server(asio::ip::make_address(options_.host),
                                   options_.ports[index_ % options_.ports.size()]);
    socket_.async_connect(server, [self = shared_from_this()](asio::error_code ec) {
      if (ec) return self->fail();
      self->socket_.set_option(asio::ip::tcp::no_delay(true), ec);
      if (!self->options_.tls) return self->handshake();
      self->tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(self->socket_, *tls_context);
      self->tls_->async_handshake(asio::ssl::stream_base::client, [self](asio::error_code e) {
        if (e) return self->fail();
        self->handshake();
      });
    });
  }

 private:
  // Calls f with the stream the bytes go through: the socket, or TLS over it.
  template <class F>
  void with_stream(F&& f) {
    if (tls_) f(*tls_);
    else f(socket_);
  }

  void handshake() {
    send_raw("GET " + options_.path + " HTTP/1.1\r\nHost: " + options_.host +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n");
    with_stream([&](auto& stream) {
      asio::async_read_until(stream, asio::dynamic_buffer(buffer_), "\r\n\r\n",
                             [self = shared_from_this()](asio::error_code ec, std::size_t n) {
                               if (ec || self->buffer_.compare(0, 12, "HTTP/1.1 101") != 0) return self->fail();
                               ++self->counters_.connected;
                               self->buffer_.erase(0, n);
                               if (self->options_.protocol != Protocol::socketio) self->send_subscribe();
                               self->parse_frames();
                             });
    });
  }

  void send_subscribe() {
    // With an acknowledgement (id 1): livecast answers a subscribe in it;
    // the Socket.IO peer acknowledges too.
    if (options_.protocol == Protocol::socketio)
      send_text("421[\"subscribe\",\"" + topic_ + "\"]");
    else if (resume_)
      send_text(R"({"op":"subscribe","id":1,"topic":")" + topic_ + R"(","recover":{"epoch":")" + resume_->epoch +
                R"(","offset":)" + std::to_string(resume_->offset) + "}}");
    else
      send_text(R"({"op":"subscribe","id":1,"topic":")" + topic_ + "\"}");
  }

 public:
  std::size_t index() const { return index_; }
  bool positioned() const { return subscribed_ && last_seq_ >= 0 && !position_.epoch.empty(); }
  Position position() const {
    Position p = position_;
    p.seq = last_seq_;
    return p;
  }
  // Drops the connection as a network blip would: a TCP reset, nothing sent
  // before it, and nothing of this client counted from now on.
  void abort() {
    done_ = nullptr;
    settled_ = nullptr;
    asio::error_code ec;
    socket_.set_option(asio::socket_base::linger(true, 0), ec);
    socket_.close(ec);
  }

 private:

  void send_text(const std::string& payload, unsigned char opcode = 0x1) { send_raw(livecast_bench::client_frame(opcode, payload, mask_)); }

  // One write in flight at a time; what comes meanwhile waits in pending_.
  void send_raw(const std::string& bytes) {
    pending_ += bytes;
    if (!writing_) write_pending();
  }
  void write_pending() {
    if (pending_.empty()) return;
    writing_ = true;
    writing_buffer_.swap(pending_);
    pending_.clear();
    with_stream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(writing_buffer_),
                        [self = shared_from_this()](asio::error_code ec, std::size_t) {
                          self->writing_ = false;
                          self->writing_buffer_.clear();
                          if (!ec) self->write_pending();
                        });
    });
  }

  // Consumes whole frames from buffer_, then reads more.
  void parse_frames() {
    std::size_t pos = 0;
    const std::int64_t now = now_micros();  // one clock read per read, not per frame
    for (;;) {
      std::size_t avail = buffer_.size() - pos;
      if (avail < 2) break;
      const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data() + pos);
      std::size_t len = b[1] & 0x7F, header = 2;
      if (len == 126) {
        if (avail < 4) break;
        len = (static_cast<std::size_t>(b[2]) << 8) | b[3];
        header = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
        header = 10;
      }
      if (avail < header + len) break;
      const unsigned opcode = b[0] & 0x0F;
      const char* msg = buffer_.data() + pos + header;
      pos += header + len;
      if (opcode == 0x8) {
        ++counters_.closed;
        asio::error_code ec;
        socket_.close(ec);
        return end();
      }
      if (opcode == 0x9) send_text(std::string(msg, len), 0xA);
      else if (opcode == 0x1) on_text(msg, len, now);
      if (!socket_.is_open()) return;  // on_text refused the server's answer
    }
    buffer_.erase(0, pos);
    read_some();
  }

  void on_text(const char* msg, std::size_t len, std::int64_t now) {
    const char* end = msg + len;
    if (options_.protocol == Protocol::socketio) {
      // Engine.IO v4 packets: 0 open, 2 ping, 4 message; Socket.IO inside:
      // 0 connect, 2 event.
      if (len >= 1 && msg[0] == '2') return send_text("3");
      if (len >= 1 && msg[0] == '0') return send_text("40");
      if (len >= 2 && msg[0] == '4' && msg[1] == '0') return send_subscribe();
      if (len >= 4 && std::memcmp(msg, "431[", 4) == 0) {
        if (std::search(msg, end, "\"error\"", "\"error\"" + 7) != end) return fail();
        return on_subscribed();
      }
      if (len >= 8 && std::memcmp(msg, "42[\"pub\"", 8) == 0) return on_publication(msg, end, now);
      return;
    }
    // livecast.v1 and the ws peer: replies carry "ok" or "error" near the start.
    if (len >= 6 && (std::memcmp(msg, "{\"id\":", 6) == 0 || std::memcmp(msg, "{\"ok\"", 5) == 0)) {
      if (std::search(msg, end, "\"ok\"", "\"ok\"" + 4) == end) return fail();
      if (options_.reconnect_storm) on_storm_reply(msg, end, now);
      return on_subscribed();
    }
    if (options_.reconnect_storm) return on_storm_publication(msg, end, now);
    on_publication(msg, end, now);
  }

  // {"id":1,"ok":{"topic":"t0","epoch":"...","offset":120,"recovered":true}}
  void on_storm_reply(const char* msg, const char* end, std::int64_t now) {
    static constexpr char epoch_key[] = "\"epoch\":\"";
    const char* e = std::search(msg, end, epoch_key, epoch_key + sizeof epoch_key - 1);
    if (e != end) {
      e += sizeof epoch_key - 1;
      position_.epoch.assign(e, std::find(e, end, '"'));
    }
    std::int64_t offset = 0;
    find_int(msg, end, "\"offset\":", 9, offset);
    position_.offset = offset;
    if (!resume_ || subscribed_) return;
    auto& storm = counters_.storm;
    static constexpr char recovered_key[] = "\"recovered\":true";
    if (std::search(msg, end, recovered_key, recovered_key + sizeof recovered_key - 1) != end) ++storm.resubscribed;
    else ++storm.not_recovered;
    storm.resubscribe_us.record(now - storm.dropped_at);
    // Caught up at the head the reply names, and never before one
    // publication past the recover offset.
    catch_up_offset_ = std::max(offset, resume_->offset + 1);
  }

  void on_storm_publication(const char* msg, const char* end, std::int64_t now) {
    std::int64_t offset = 0, seq = 0;
    if (find_int(msg, end, "\"offset\":", 9, offset)) position_.offset = offset;
    if (!find_int(msg, end, "\"seq\":", 6, seq)) return;
    if (resume_) {
      auto& storm = counters_.storm;
      if (last_seq_ >= 0 && seq > last_seq_ + 1) storm.gaps += static_cast<std::uint64_t>(seq - last_seq_ - 1);
      if (seq <= last_seq_) ++storm.duplicates;
      if (catch_up_offset_ > 0 && offset >= catch_up_offset_ && settled_) {
        ++storm.caught_up;
        storm.catch_up_us.record(now - storm.dropped_at);
        settle(true);
      }
    }
    const bool first = last_seq_ < 0;
    last_seq_ = std::max(last_seq_, seq);
    if (first && subscribed_) {
      ++counters_.positioned;
      if (counters_.on_positioned) counters_.on_positioned();
    }
  }

  void on_subscribed() {
    if (subscribed_) return;
    subscribed_ = true;
    ++counters_.subscribed;
    finish();
  }

  void on_publication(const char* msg, const char* end, std::int64_t now) {
    if (!counters_.measuring) {
      std::int64_t seq;
      if (find_int(msg, end, "\"seq\":", 6, seq)) last_seq_ = std::max(last_seq_, seq);
      return;
    }
    ++counters_.deliveries;
    std::int64_t ts, seq;
    if (find_int(msg, end, "\"ts\":", 5, ts)) counters_.latency.record(now - ts);
    if (find_int(msg, end, "\"seq\":", 6, seq)) {
      if (last_seq_ >= 0 && seq > last_seq_ + 1) counters_.gaps += static_cast<std::uint64_t>(seq - last_seq_ - 1);
      if (seq <= last_seq_) ++counters_.duplicates;
      last_seq_ = std::max(last_seq_, seq);
    }
  }

  void read_some() {
    constexpr std::size_t chunk = 4096;
    std::size_t old = buffer_.size();
    buffer_.resize(old + chunk);
    with_stream([&](auto& stream) {
      stream.async_read_some(asio::buffer(&buffer_[old], chunk),
                             [self = shared_from_this(), old](asio::error_code ec, std::size_t n) {
                               self->buffer_.resize(old + n);
                               if (ec) {
                                 if (ec != asio::error::operation_aborted) ++self->counters_.closed;
                                 return self->end();
                               }
                               self->parse_frames();
                             });
    });
  }

  void fail() {
    if (!subscribed_ && done_) ++counters_.failed;
    asio::error_code ec;
    socket_.close(ec);
    end();
  }
  void finish() {
    if (auto d = std::move(done_)) {
      done_ = nullptr;
      d();
    }
  }
  void settle(bool caught_up) {
    if (auto s = std::move(settled_)) {
      settled_ = nullptr;
      s(caught_up);
    }
  }
  // The connection ended (closed, failed, or refused the subscription).
  void end() {
    finish();
    settle(false);
  }

  asio::ip::tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;  // with --tls, once connected
  const Options& options_;
  Counters& counters_;
  std::size_t index_;
  std::string topic_;
  std::uint32_t mask_;
  std::string buffer_, pending_, writing_buffer_;
  bool writing_ = false, subscribed_ = false;
  std::int64_t last_seq_ = -1;
  std::function<void()> done_;
  std::function<void(bool)> settled_;
  Position position_;              // --reconnect-storm: the epoch and offset last seen
  std::optional<Position> resume_;  // a storm reconnect: where it resumes from
  std::int64_t catch_up_offset_ = 0;
};

// ---- worker ----------------------------------------------------------------

// " max n bucket:count..." (n pairs), read back by read_histogram.
void append_histogram(std::string& out, const Histogram& h) {
  std::string pairs;
  std::size_t n = 0;
  for (int b = 0; b < Histogram::buckets; ++b)
    if (auto c = h.count(b)) {
      pairs += ' ' + std::to_string(b) + ':' + std::to_string(c);
      ++n;
    }
  out += ' ' + std::to_string(h.max()) + ' ' + std::to_string(n) + pairs;
}

void read_histogram(std::istream& in, Histogram& h) {
  std::int64_t max = 0;
  std::size_t n = 0;
  in >> max >> n;
  h.merge_max(max);
  std::string pair;
  for (std::size_t i = 0; i < n && (in >> pair); ++i) {
    auto colon = pair.find(':');
    h.add(std::stoi(pair.substr(0, colon)), std::stoull(pair.substr(colon + 1)));
  }
}

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

int run_worker(const Options& o, std::size_t worker, int command_fd, int result_fd) {
  asio::io_context io(1);
  std::unique_ptr<asio::ssl::context> tls;
  if (o.tls) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->set_verify_mode(asio::ssl::verify_none);
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(tls->native_handle(), alpn, sizeof alpn);
    tls_context = tls.get();
  }
  Counters counters;
  std::vector<std::shared_ptr<Client>> clients;
  std::vector<std::size_t> mine;
  for (std::size_t i = worker; i < o.connections; i += o.processes) mine.push_back(i);
  clients.reserve(mine.size());

  // Keep at most in_flight handshakes open so the servers' accept queues are
  // not overrun; each finished one starts the next.
  std::size_t next = 0, finished = 0;
  bool ready_sent = false;
  auto send_ready = [&] {
    if (ready_sent) return;
    ready_sent = true;
    write_all(result_fd, "ready\n");
  };
  // --connect-rate: this worker's k-th connection starts no earlier than
  // k / (rate / processes) seconds in; a slot freed before then waits.
  const double worker_rate = o.connect_rate / static_cast<double>(o.processes);
  const auto connect_begin = std::chrono::steady_clock::now();
  auto due = [&](std::size_t k) {
    return connect_begin + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(static_cast<double>(k) / worker_rate));
  };
  asio::steady_timer pacing(io);
  std::size_t deferred = 0;
  bool pacing_armed = false;
  std::function<void()> start_next = [&] {
    if (next >= mine.size()) return;
    if (worker_rate > 0 && std::chrono::steady_clock::now() < due(next)) {
      ++deferred;
      if (!pacing_armed) {
        pacing_armed = true;
        pacing.expires_at(due(next));
        pacing.async_wait([&](asio::error_code ec) {
          pacing_armed = false;
          if (ec) return;
          const std::size_t slots = deferred;
          deferred = 0;
          for (std::size_t i = 0; i < slots; ++i) start_next();
        });
      }
      return;
    }
    auto c = std::make_shared<Client>(io, o, counters, mine[next++]);
    clients.push_back(c);
    c->start([&] {
      ++finished;
      if (finished == mine.size()) send_ready();
      asio::post(io, start_next);
    });
  };
  for (std::size_t i = 0; i < o.in_flight; ++i) start_next();
  if (mine.empty()) send_ready();
  asio::steady_timer connect_deadline(io);
  connect_deadline.expires_after(std::chrono::milliseconds(static_cast<long>(o.connect_timeout_seconds * 1000)));
  connect_deadline.async_wait([&](asio::error_code ec) {
    if (!ec) send_ready();
  });

  // --reconnect-storm. "warm" is answered once every subscribed client holds
  // a position (has received a publication); "storm" drops every connection
  // and reconnects each client with recover, answered once every reconnect
  // has caught up or failed. Either answer comes at --storm-timeout-seconds
  // at the latest, with what holds by then.
  asio::steady_timer storm_deadline(io);
  auto arm_storm_deadline = [&](std::function<void()> then) {
    storm_deadline.expires_after(std::chrono::milliseconds(static_cast<long>(o.storm_timeout_seconds * 1000)));
    storm_deadline.async_wait([then](asio::error_code ec) {
      if (!ec) then();
    });
  };
  bool warm_wanted = false;
  auto send_warm = [&] {
    if (!warm_wanted) return;
    warm_wanted = false;
    storm_deadline.cancel();
    write_all(result_fd, "warm\n");
  };
  counters.on_positioned = [&] {
    if (counters.positioned >= counters.subscribed) send_warm();
  };
  std::vector<std::pair<std::size_t, Position>> storm_clients;  // index, where it resumes
  std::size_t storm_next = 0, storm_settled = 0, setup_connected = 0, setup_subscribed = 0, setup_failed = 0;
  bool storm_open = false;
  auto send_storm = [&] {
    if (!storm_open) return;
    storm_open = false;
    storm_deadline.cancel();
    const auto& s = counters.storm;
    std::string out = "storm";
    for (std::size_t v : {setup_connected, setup_subscribed, setup_failed, mine.size() - storm_clients.size(),
                          s.resubscribed, s.not_recovered, s.caught_up, s.failed, storm_clients.size() - storm_settled})
      out += ' ' + std::to_string(v);
    out += ' ' + std::to_string(s.gaps) + ' ' + std::to_string(s.duplicates);
    append_histogram(out, s.resubscribe_us);
    append_histogram(out, s.catch_up_us);
    write_all(result_fd, out + "\n");
  };
  std::function<void()> storm_start_next = [&] {
    if (storm_next >= storm_clients.size()) return;
    const auto& [index, from] = storm_clients[storm_next++];
    auto c = std::make_shared<Client>(io, o, counters, index, from);
    clients.push_back(c);
    // The next reconnect starts once this one has its reply (or failed).
    c->start([&] { asio::post(io, storm_start_next); },
             [&](bool caught_up) {
               if (!caught_up) ++counters.storm.failed;
               if (++storm_settled == storm_clients.size()) send_storm();
             });
  };
  auto start_storm = [&] {
    setup_connected = counters.connected;
    setup_subscribed = counters.subscribed;
    setup_failed = counters.failed;
    counters.storm.dropped_at = now_micros();
    // Every connection drops at once; those without a position have nothing
    // to recover from and are not reconnected (counted as unpositioned).
    for (auto& c : clients) {
      if (c->positioned()) storm_clients.emplace_back(c->index(), c->position());
      c->abort();
    }
    clients.clear();
    storm_open = true;
    if (storm_clients.empty()) return send_storm();
    arm_storm_deadline(send_storm);
    for (std::size_t i = 0; i < o.in_flight; ++i) storm_start_next();
  };

  asio::posix::stream_descriptor commands(io, command_fd);
  std::string command_buffer;
  std::function<void()> read_command = [&] {
    asio::async_read_until(commands, asio::dynamic_buffer(command_buffer), '\n',
                           [&](asio::error_code ec, std::size_t n) {
                             if (ec) return io.stop();
                             std::string line = command_buffer.substr(0, n - 1);
                             command_buffer.erase(0, n);
                             if (line == "begin") {
                               counters.deliveries = counters.gaps = counters.duplicates = 0;
                               counters.latency.clear();
                               counters.measuring = true;
                             } else if (line == "end") {
                               counters.measuring = false;
                               std::string out = "stats " + std::to_string(counters.connected) + ' ' +
                                                 std::to_string(counters.subscribed) + ' ' +
                                                 std::to_string(counters.failed) + ' ' +
                                                 std::to_string(counters.closed) + ' ' +
                                                 std::to_string(counters.deliveries) + ' ' +
                                                 std::to_string(counters.gaps) + ' ' +
                                                 std::to_string(counters.duplicates) + ' ' +
                                                 std::to_string(counters.latency.max());
                               for (int b = 0; b < Histogram::buckets; ++b)
                                 if (auto c = counters.latency.count(b))
                                   out += ' ' + std::to_string(b) + ':' + std::to_string(c);
                               write_all(result_fd, out + "\n");
                             } else if (line == "warm") {
                               warm_wanted = true;
                               if (counters.positioned >= counters.subscribed) send_warm();
                               else arm_storm_deadline(send_warm);
                             } else if (line == "storm") {
                               start_storm();
                             } else if (line == "quit") {
                               return io.stop();
                             }
                             read_command();
                           });
  };
  read_command();
  io.run();
  return 0;
}

// ---- parent ----------------------------------------------------------------

struct ProcSample {
  long rss_kib = 0;
  double cpu_s = 0;
};

ProcSample sample_process(long pid) {
  ProcSample s;
  {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atol(line.c_str() + 6);
  }
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Fields after the command name, which may hold spaces: state is field 3,
  // utime and stime are fields 14 and 15.
  auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && (in >> field); ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return s;
}

ProcSample sample_servers(const std::vector<long>& pids) {
  ProcSample total;
  for (long pid : pids) {
    auto s = sample_process(pid);
    total.rss_kib += s.rss_kib;
    total.cpu_s += s.cpu_s;
  }
  return total;
}

struct SockStat {
  long tcp_inuse = 0, tcp_mem_pages = 0;
};

SockStat sockstat() {
  SockStat s;
  std::ifstream f("/proc/net/sockstat");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("TCP:", 0) != 0) continue;
    std::istringstream in(line.substr(4));
    std::string key;
    long value;
    while (in >> key >> value) {
      if (key == "inuse") s.tcp_inuse = value;
      if (key == "mem") s.tcp_mem_pages = value;
    }
  }
  return s;
}

struct Worker {
  pid_t pid = 0;
  int command_fd = -1;
  FILE* results = nullptr;
};

void sleep_seconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

double percentile_ms(const Histogram& h, double p) { return h.percentile(p) / 1000.0; }

// --reconnect-storm, once every worker is connected: publications start
// (--start-signal), --warmup-seconds pass, every worker confirms that its
// clients hold a position; then the storm, from the "storm" command to the
// last worker's answer. Prints one JSON line; 1 unless every client caught up.
int run_storm(const Options& o, std::vector<Worker>& workers, double setup_s, const ProcSample& before_connect) {
  std::vector<char> line(1 << 20);
  auto read_line = [&](Worker& w) {
    if (w.results && std::fgets(line.data(), static_cast<int>(line.size()), w.results)) return true;
    w.results = nullptr;
    return false;
  };
  using clock = std::chrono::steady_clock;
  const ProcSample warm_begin = sample_servers(o.server_pids);
  const auto warm_started = clock::now();
  if (o.start_signal)
    for (long pid : o.server_pids) ::kill(static_cast<pid_t>(pid), SIGUSR2);
  sleep_seconds(o.warmup_seconds);  // the servers publish meanwhile: the steady state the storm interrupts
  for (auto& w : workers) write_all(w.command_fd, "warm\n");
  for (auto& w : workers) read_line(w);
  const ProcSample storm_begin = sample_servers(o.server_pids);
  const auto dropped = clock::now();
  const double warmup_s = std::chrono::duration<double>(dropped - warm_started).count();
  for (auto& w : workers) write_all(w.command_fd, "storm\n");

  // connected, subscribed and failed at setup, not reconnected, resubscribed,
  // not recovered, caught up, reconnects failed, timed out, gaps, duplicates.
  std::array<std::uint64_t, 11> sum{};
  Histogram resubscribe_us, catch_up_us;
  int exit_code = 0;
  for (auto& w : workers) {
    if (!read_line(w)) {
      exit_code = 1;
      continue;
    }
    std::istringstream in(line.data());
    std::string tag;
    in >> tag;
    for (auto& v : sum) {
      std::uint64_t x = 0;
      in >> x;
      v += x;
    }
    read_histogram(in, resubscribe_us);
    read_histogram(in, catch_up_us);
  }
  const double storm_s = std::chrono::duration<double>(clock::now() - dropped).count();
  const ProcSample storm_end = sample_servers(o.server_pids);
  const auto [connected, subscribed, setup_failed, not_reconnected, resubscribed, not_recovered, caught_up,
              reconnects_failed, timed_out, gaps, duplicates] = sum;
  const double steady_cpu_per_s = warmup_s > 0 ? (storm_begin.cpu_s - warm_begin.cpu_s) / warmup_s : 0;
  const double storm_cpu_s = storm_end.cpu_s - storm_begin.cpu_s;
  std::printf("{\"label\":\"%s\",\"protocol\":\"%s\",\"mode\":\"reconnect_storm\",\"connections\":%zu,"
              "\"topics\":%zu,\"processes\":%zu,\"in_flight\":%zu,\"connected\":%llu,\"subscribed\":%llu,"
              "\"setup_failed\":%llu,\"setup_s\":%.2f,\"warmup_s\":%.2f,\"storm_wall_s\":%.3f,"
              "\"storm_server_cpu_s\":%.3f,\"steady_server_cpu_percent\":%.1f,\"storm_server_cpu_excess_s\":%.3f,"
              "\"reconnected\":%llu,\"not_reconnected\":%llu,\"resubscribed\":%llu,\"not_recovered\":%llu,"
              "\"caught_up\":%llu,\"reconnects_failed\":%llu,\"timed_out\":%llu,\"failed\":%llu,"
              "\"gaps\":%llu,\"duplicates\":%llu,"
              "\"resubscribe_ms\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
              "\"catch_up_ms\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
              json_escape(o.label).c_str(), o.protocol_name.c_str(), o.connections, o.topics, o.processes,
              o.in_flight, static_cast<unsigned long long>(connected), static_cast<unsigned long long>(subscribed),
              static_cast<unsigned long long>(setup_failed), setup_s, warmup_s, storm_s, storm_cpu_s,
              100.0 * steady_cpu_per_s, storm_cpu_s - steady_cpu_per_s * storm_s,
              static_cast<unsigned long long>(o.connections - not_reconnected),
              static_cast<unsigned long long>(not_reconnected), static_cast<unsigned long long>(resubscribed),
              static_cast<unsigned long long>(not_recovered), static_cast<unsigned long long>(caught_up),
              static_cast<unsigned long long>(reconnects_failed), static_cast<unsigned long long>(timed_out),
              static_cast<unsigned long long>(o.connections - caught_up), static_cast<unsigned long long>(gaps),
              static_cast<unsigned long long>(duplicates), percentile_ms(resubscribe_us, 0.5),
              percentile_ms(resubscribe_us, 0.99), static_cast<double>(resubscribe_us.max()) / 1000.0,
              percentile_ms(catch_up_us, 0.5), percentile_ms(catch_up_us, 0.99),
              static_cast<double>(catch_up_us.max()) / 1000.0);
  if (!o.server_pids.empty())
    std::printf(",\"server\":{\"pids\":%zu,\"rss_kib_before_connect\":%ld,\"rss_kib_before_storm\":%ld,"
                "\"rss_kib_after_storm\":%ld}",
                o.server_pids.size(), before_connect.rss_kib, storm_begin.rss_kib, storm_end.rss_kib);
  std::printf("}\n");
  std::fflush(stdout);
  if (caught_up < o.connections) exit_code = 1;
  return exit_code;
}

void quit_workers(std::vector<Worker>& workers) {
  for (auto& w : workers) {
    write_all(w.command_fd, "quit\n");
    ::close(w.command_fd);
  }
  for (auto& w : workers) {
    int status = 0;
    waitpid(w.pid, &status, 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::size_t open_files = livecast_bench::raise_open_file_limit();
  const std::size_t per_worker = (o.connections + o.processes - 1) / o.processes;
  if (per_worker + 64 > open_files) {
    std::cerr << "livecast-loadgen: " << per_worker << " connections per process exceed the open-file limit "
              << open_files << "; raise --processes\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  const long page_kib = sysconf(_SC_PAGESIZE) / 1024;
  const ProcSample before_connect = sample_servers(o.server_pids);
  const SockStat sock_before = sockstat();
  const auto started = std::chrono::steady_clock::now();

  std::vector<Worker> workers;
  for (std::size_t w = 0; w < o.processes; ++w) {
    int to_worker[2], from_worker[2];
    if (pipe(to_worker) != 0 || pipe(from_worker) != 0) {
      std::perror("pipe");
      return 1;
    }
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
    if (pid == 0) {
      // The worker keeps only its own two pipe ends.
      for (auto& other : workers) {
        ::close(other.command_fd);
        std::fclose(other.results);
      }
      ::close(to_worker[1]);
      ::close(from_worker[0]);
      std::_Exit(run_worker(o, w, to_worker[0], from_worker[1]));
    }
    ::close(to_worker[0]);
    ::close(from_worker[1]);
    workers.push_back({pid, to_worker[1], fdopen(from_worker[0], "r")});
  }

  // Wait for every worker to finish connecting (or to give up).
  std::vector<char> line(1 << 20);
  for (auto& w : workers)
    if (!std::fgets(line.data(), static_cast<int>(line.size()), w.results)) w.results = nullptr;
  const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (o.reconnect_storm) {
    const int code = run_storm(o, workers, setup_s, before_connect);
    quit_workers(workers);
    return code;
  }

  if (o.start_signal)
    for (long pid : o.server_pids) ::kill(static_cast<pid_t>(pid), SIGUSR2);
  int exit_code = 0;
  double previous_per_s = 0, peak_per_s = 0;
  std::size_t peak_step = 0;
  bool saturated = false;
  for (std::size_t step = 0; step < o.steps; ++step) {
    if (step > 0 && o.step_signal)
      for (long pid : o.server_pids) ::kill(static_cast<pid_t>(pid), SIGUSR2);
    sleep_seconds(o.warmup_seconds);
    for (auto& w : workers) write_all(w.command_fd, "begin\n");
    const ProcSample at_begin = sample_servers(o.server_pids);
    const SockStat sock_begin = sockstat();
    const auto begin = std::chrono::steady_clock::now();
    sleep_seconds(o.measure_seconds);
    for (auto& w : workers) write_all(w.command_fd, "end\n");
    const ProcSample at_end = sample_servers(o.server_pids);
    const double window = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();

    Counters total;
    for (auto& w : workers) {
      if (!w.results || !std::fgets(line.data(), static_cast<int>(line.size()), w.results)) {
        exit_code = 1;
        continue;
      }
      std::istringstream in(line.data());
      std::string tag;
      std::size_t connected, subscribed, failed, closed;
      std::uint64_t deliveries, gaps, duplicates;
      std::int64_t max;
      in >> tag >> connected >> subscribed >> failed >> closed >> deliveries >> gaps >> duplicates >> max;
      total.connected += connected;
      total.subscribed += subscribed;
      total.failed += failed;
      total.closed += closed;
      total.deliveries += deliveries;
      total.gaps += gaps;
      total.duplicates += duplicates;
      total.latency.merge_max(max);
      std::string pair;
      while (in >> pair) {
        auto colon = pair.find(':');
        total.latency.add(std::stoi(pair.substr(0, colon)), std::stoull(pair.substr(colon + 1)));
      }
    }
    const double cpu_s = at_end.cpu_s - at_begin.cpu_s;
    const double per_s = static_cast<double>(total.deliveries) / window;
    std::printf("{\"label\":\"%s\",\"protocol\":\"%s\",\"step\":%zu,\"connections\":%zu,\"topics\":%zu,"
                "\"processes\":%zu,\"connected\":%zu,\"subscribed\":%zu,\"failed\":%zu,\"closed\":%zu,"
                "\"setup_s\":%.2f,\"measure_s\":%.3f,\"deliveries\":%llu,\"deliveries_per_s\":%.0f,"
                "\"gaps\":%llu,\"duplicates\":%llu,"
                "\"latency_us\":{\"samples\":%llu,\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%lld}",
                json_escape(o.label).c_str(), o.protocol_name.c_str(), step, o.connections, o.topics, o.processes,
                total.connected, total.subscribed, total.failed, total.closed, setup_s, window,
                static_cast<unsigned long long>(total.deliveries), per_s,
                static_cast<unsigned long long>(total.gaps), static_cast<unsigned long long>(total.duplicates),
                static_cast<unsigned long long>(total.latency.total()), total.latency.percentile(0.5),
                total.latency.percentile(0.9), total.latency.percentile(0.99), total.latency.percentile(0.999),
                static_cast<long long>(total.latency.max()));
    if (!o.server_pids.empty()) {
      std::printf(",\"server\":{\"pids\":%zu,\"rss_kib_before_connect\":%ld,\"rss_kib_measure_start\":%ld,"
                  "\"rss_kib_after\":%ld,\"cpu_s\":%.3f,\"cpu_percent\":%.1f,\"deliveries_per_cpu_s\":%.0f}",
                  o.server_pids.size(), before_connect.rss_kib, at_begin.rss_kib, at_end.rss_kib, cpu_s,
                  100.0 * cpu_s / window, cpu_s > 0 ? static_cast<double>(total.deliveries) / cpu_s : 0.0);
    }
    std::printf(",\"sockstat\":{\"tcp_inuse_before_connect\":%ld,\"tcp_inuse\":%ld,"
                "\"tcp_mem_kib_before_connect\":%ld,\"tcp_mem_kib\":%ld}",
                sock_before.tcp_inuse, sock_begin.tcp_inuse, sock_before.tcp_mem_pages * page_kib,
                sock_begin.tcp_mem_pages * page_kib);
    if (o.histogram) {
      std::printf(",\"histogram_us\":[");
      bool first = true;
      for (int b = 0; b < Histogram::buckets; ++b)
        if (auto c = total.latency.count(b)) {
          std::printf("%s[%.0f,%llu]", first ? "" : ",", Histogram::value(b), static_cast<unsigned long long>(c));
          first = false;
        }
      std::printf("]");
    }
    std::printf("}\n");
    std::fflush(stdout);
    if (total.subscribed < o.connections) exit_code = 1;
    if (per_s > peak_per_s) {
      peak_per_s = per_s;
      peak_step = step;
    }
    if (o.stop_when_saturated && step > 0 &&
        (per_s < 1.3 * previous_per_s || total.latency.percentile(0.5) > 1e6))
      saturated = true;
    if (saturated && step >= peak_step + o.past_saturation) break;
    previous_per_s = per_s;
  }

  quit_workers(workers);
  return exit_code;
}
