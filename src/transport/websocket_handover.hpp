// One port for everything: the HTTP transport reads a request, finds a
// WebSocket upgrade for a WebSocketTransport it serves, and hands the
// connection over with the bytes it already read, on the same shard, TLS
// included: the stream moves with its TLS session, past its handshake.
#pragma once

#include <livecast/config.hpp>
#include <livecast/websocket_transport.hpp>

#include "byte_stream.hpp"

#include <cstddef>
#include <memory>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class EngineIoUpgradeSource;  // engineio.hpp

struct WebSocketHandover {
  // On `shard`'s thread. A stopped transport drops the connection.
  // `upgrade_from`: the Engine.IO polling session the request's sid names
  // (on `shard`), which the WebSocket may take over.
  static void adopt(WebSocketTransport& transport, std::size_t shard, ByteStream stream, std::string_view received,
                    std::shared_ptr<EngineIoUpgradeSource> upgrade_from = nullptr);
};

}  // namespace detail
LIVECAST_END_NAMESPACE
