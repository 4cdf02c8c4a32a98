// The one rule for a listening address (metrics.listen): "host:port" with a numeric IPv4 host or
// a bracketed numeric IPv6 one, and a port 0..65535. The loader checks it at start-up and the
// metrics server parses it with the same function, so a value check-config accepts is one the
// server can bind (names such as "localhost" are refused: civetweb takes numeric hosts only).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace handoffd {

// What ParseListenAddress refuses, for error messages.
inline constexpr std::string_view kListenAddressRule =
    "host:port with a numeric IPv4 or [IPv6] host and a port 0..65535";

struct ListenAddress {
  std::string host;  // as written: "127.0.0.1", "0.0.0.0" or "[::1]"
  int port = 0;      // 0 picks a free port
};

// Parses "127.0.0.1:9464", "0.0.0.0:0", "[::1]:9464". Returns nullopt for anything else: an
// empty or non-numeric host ("localhost:9464", ":9464"), an unbracketed IPv6 host, a port that
// is not a decimal number in 0..65535. Pure; never throws.
std::optional<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace handoffd
