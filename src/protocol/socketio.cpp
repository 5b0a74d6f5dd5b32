// Placeholder until the Engine.IO v4 / Socket.IO v5 codec lands (issue 13).
#include <livecast/socketio.hpp>

#include <stdexcept>

LIVECAST_BEGIN_NAMESPACE

std::shared_ptr<const Protocol> make_socketio_protocol(SocketIoSettings) {
  throw std::logic_error("livecast: the socket.io protocol is not built yet");
}

LIVECAST_END_NAMESPACE
