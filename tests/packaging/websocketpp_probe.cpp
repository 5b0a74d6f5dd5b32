// Instantiates what livecast uses of websocketpp (an Asio server and client,
// their loggers) so that the patched headers are compiled, not only read.
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>
#include <websocketpp/server.hpp>

using Server = websocketpp::server<websocketpp::config::asio>;
using Client = websocketpp::client<websocketpp::config::asio_client>;

int main() {
  Server server;
  server.init_asio();
  server.set_reuse_addr(true);
  server.set_message_handler([&server](websocketpp::connection_hdl hdl, Server::message_ptr message) {
    server.send(hdl, message->get_payload(), message->get_opcode());
  });
  server.listen(websocketpp::lib::asio::ip::tcp::v4(), 0);
  server.start_accept();

  Client client;
  client.init_asio();
  websocketpp::lib::error_code ec;
  Client::connection_ptr connection = client.get_connection("ws://127.0.0.1:1/", ec);
  if (connection) client.connect(connection);
  server.stop_listening();
  return 0;
}
