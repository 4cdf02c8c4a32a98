#include "config/listen_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace handoffd {

std::optional<ListenAddress> ParseListenAddress(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) return std::nullopt;
  const std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return std::nullopt;
  }
  unsigned char addr[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), addr) != 1) {
      return std::nullopt;
    }
  } else if (inet_pton(AF_INET, host.c_str(), addr) != 1) {
    return std::nullopt;
  }
  return ListenAddress{host, port};
}

}  // namespace handoffd
