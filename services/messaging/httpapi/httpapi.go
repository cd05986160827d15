// Package httpapi holds the HTTP pieces every service shares: JSON decoding with
// clear client errors, the single mapping from fault codes to HTTP statuses, the
// operator guard, and the health, readiness and metrics endpoints.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
)

// MaxBodyBytes is the largest request body any endpoint accepts (64 KiB): the largest order the
// input bounds allow is well under 16 KiB.
const MaxBodyBytes = 64 << 10

// statusOf is the one place where a domain error becomes an HTTP status.
var statusOf = map[string]int{
	fault.Invalid:       http.StatusBadRequest,
	fault.NotFound:      http.StatusNotFound,
	fault.Conflict:      http.StatusConflict,
	fault.Unauthorized:  http.StatusUnauthorized,
	fault.Forbidden:     http.StatusForbidden,
	fault.TooLarge:      http.StatusRequestEntityTooLarge,
	fault.TooMany:       http.StatusTooManyRequests,
	fault.MediaType:     http.StatusUnsupportedMediaType,
	fault.Unprocessable: http.StatusUnprocessableEntity,
	fault.Unavailable:   http.StatusServiceUnavailable,
	fault.Internal:      http.StatusInternalServerError,
}

// WriteError answers `{"error": ..., "code": ...}`, plus err's fault.Fields, with the status of err's fault
// code. Internal errors are logged with their details and answered generically. An error with a
// fault.RetryAfter is answered with a Retry-After header, in whole seconds (at least 1).
func WriteError(w http.ResponseWriter, r *http.Request, log zerolog.Logger, err error) {
	code := fault.Code(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if d := fault.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	if status >= 500 {
		log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
	}
	body := map[string]string{"error": fault.Message(err), "code": fault.Reason(err)}
	for k, v := range fault.Fields(err) {
		if _, taken := body[k]; !taken {
			body[k] = v
		}
	}
	WriteJSON(w, status, body)
}

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads one JSON object from the request body into v. A body that is not
// declared `Content-Type: application/json` (415: this also keeps plain HTML forms of other
// sites from posting here), one over MaxBodyBytes (413), unknown fields, trailing data and a
// wrong type (400) are client errors whose message says what is wrong.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fault.Errorf(fault.MediaType, "the request body must be JSON, sent with Content-Type: application/json (got %q)",
			excerpt(r.Header.Get("Content-Type"), 64))
	}
	if r.ContentLength > MaxBodyBytes {
		return fault.Errorf(fault.TooLarge, "request body is over %d bytes", MaxBodyBytes)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return fault.Errorf(fault.Invalid, "request body must hold a single JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fault.Errorf(fault.Invalid, "request body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		return fault.Errorf(fault.TooLarge, "request body is over %d bytes", MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return fault.Errorf(fault.Invalid, "request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fault.Errorf(fault.Invalid, "malformed JSON: the body ends too early")
	case errors.As(err, &syntax):
		return fault.Errorf(fault.Invalid, "malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typeErr):
		return fault.Errorf(fault.Invalid, "field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fault.Errorf(fault.Invalid, "unknown field %s", excerpt(strings.TrimPrefix(err.Error(), "json: unknown field "), 80))
	default:
		return fault.Errorf(fault.Invalid, "malformed JSON: %s", err.Error())
	}
}

// jsonKind names what a Go type takes in JSON, for error messages.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number that fits in 64 bits"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number ≥ 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "a JSON " + t.String()
	}
}

// excerpt returns at most n bytes of s, for error messages that quote the client.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// RequireAdmin guards operator endpoints with `Authorization: Bearer <token>`. Without a token
// they are closed: every call is refused (403) until the service is given one, so a service
// started without its ADMIN_TOKEN never leaves stock, prices or dead letters open to anyone
// who reaches its port (it also logs so at start, see WarnIfClosed).
func RequireAdmin(token string, log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		want := []byte("Bearer " + token)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				WriteError(w, r, log, fault.Errorf(fault.Forbidden, "operator endpoints are closed: this service was started without ADMIN_TOKEN"))
				return
			}
			got := []byte(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				WriteError(w, r, log, fault.Errorf(fault.Unauthorized, "operator endpoint: send Authorization: Bearer <ADMIN_TOKEN>"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// WarnIfClosed logs a warning when the operator endpoints have no token, and so refuse every call.
func WarnIfClosed(token string, log zerolog.Logger) {
	if token == "" {
		log.Warn().Msg("ADMIN_TOKEN is not set: operator endpoints (stock, prices, dead letters) refuse every call")
	}
}

// Check is one readiness probe: it returns nil when the dependency answers. An error with a
// method `Degraded() bool` that reports true (debezium.DegradedError) marks the service degraded
// but still ready.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// degraded is what MountHealth asks of a probe's error.
type degraded interface {
	error
	Degraded() bool
}

// MountHealth adds GET /healthz (the process runs), GET /readyz and GET /metrics (Prometheus).
//
// /readyz runs every check within 2 s and answers 200 {"status":"ready"} when all pass, 200
// {"status":"degraded","degraded":{name: why}} when the failures only degrade the service, and
// 503 {"status":"unavailable","failed":{name: why},...} otherwise. docs/architecture.md
// ("Readiness") says which failure is which.
func MountHealth(r chi.Router, g prometheus.Gatherer, checks ...Check) {
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed, degradedBy := map[string]string{}, map[string]string{}
		for _, c := range checks {
			err := c.Probe(ctx)
			if err == nil {
				continue
			}
			if d, ok := errors.AsType[degraded](err); ok && d.Degraded() {
				degradedBy[c.Name] = err.Error()
				continue
			}
			failed[c.Name] = err.Error()
		}
		body := map[string]any{"status": "ready"}
		if len(degradedBy) > 0 {
			body["status"], body["degraded"] = "degraded", degradedBy
		}
		if len(failed) > 0 {
			body["status"], body["failed"] = "unavailable", failed
			WriteJSON(w, http.StatusServiceUnavailable, body)
			return
		}
		WriteJSON(w, http.StatusOK, body)
	})
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

// NewRouter returns a chi router with the one recover policy (Recover) and JSON answers for
// unknown routes and methods: the base of every service's routes.
func NewRouter(log zerolog.Logger) chi.Router {
	r := chi.NewRouter()
	r.Use(Recover(log))
	r.NotFound(NotFound(log))
	r.MethodNotAllowed(MethodNotAllowed(log))
	return r
}

// RoutePattern is the route chi matched for r ("/orders/{id}"), "" before routing or for none:
// it names a request's span.
func RoutePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

// Recover is the one recover policy of every service: a handler that panics is answered 500 in
// the JSON error shape (through WriteError, the one error mapping) and logged with its stack; the
// service goes on. http.ErrAbortHandler is passed on, as net/http expects.
func Recover(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Str("path", r.URL.Path).Msg("handler panicked")
				WriteError(w, r, log, fmt.Errorf("handler panicked: %v", p))
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// NotFound answers unknown routes in the JSON error shape.
func NotFound(log zerolog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, fault.Errorf(fault.NotFound, "no route %s %s", r.Method, r.URL.Path))
	}
}

// MethodNotAllowed answers a known route called with the wrong method.
func MethodNotAllowed(log zerolog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{
			"error": fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path), "code": "method_not_allowed"})
	}
}
