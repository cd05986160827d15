package httpapi

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/netutil"
)

// DefaultMaxConnections caps the connections one HTTP server holds open at once when
// MAX_CONNECTIONS is not set.
const DefaultMaxConnections = 4096

// LoopbackHosts are the names every server answers to, on any port.
var loopbackHosts = []string{"127.0.0.1", "localhost", "::1"}

// Limits are what every HTTP server of the project bounds: the Host names it answers to (against
// DNS rebinding: a page of another site, in a local browser, whose name was made to resolve to
// 127.0.0.1) and how many connections it holds at once. A service reads them from
// <NAME>_ALLOWED_HOSTS / ALLOWED_HOSTS and <NAME>_MAX_CONNECTIONS / MAX_CONNECTIONS
// (service.Config); the simulators from ALLOWED_HOSTS and MAX_CONNECTIONS.
type Limits struct {
	// AllowedHosts are names, besides 127.0.0.1, localhost and [::1], that a request's Host may
	// carry (any port): the names a container stack's services call each other by.
	AllowedHosts []string `envconfig:"ALLOWED_HOSTS"`
	// MaxConnections caps the open connections; 0: DefaultMaxConnections.
	MaxConnections int `envconfig:"MAX_CONNECTIONS"`
}

// Listener returns ln accepting at most l.MaxConnections connections at once (the next waits
// until one closes).
func (l Limits) Listener(ln net.Listener) net.Listener {
	n := l.MaxConnections
	if n <= 0 {
		n = DefaultMaxConnections
	}
	return netutil.LimitListener(ln, n)
}

// CheckHost answers 421 Misdirected Request {"code":"bad_host"} to a request whose Host header
// is not 127.0.0.1, localhost, [::1] or one of allowed (any port, names case-insensitive). A
// request without a Host (HTTP/1.0) passes.
func CheckHost(allowed []string) func(http.Handler) http.Handler {
	names := slices.Clone(loopbackHosts)
	for _, a := range allowed {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			names = append(names, strings.Trim(a, "[]"))
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Host != "" && !slices.Contains(names, hostName(r.Host)) {
				WriteJSON(w, http.StatusMisdirectedRequest, map[string]string{
					"error": "this server does not answer to the host " + excerpt(r.Host, 64), "code": "bad_host"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// hostName is the name of a Host header, without its port or an IPv6 literal's brackets, in
// lower case.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}
