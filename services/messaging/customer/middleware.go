package customer

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
)

// Caller is who sent a request that passed Require or RequireOrOperator.
type Caller struct {
	// Customer is the subject of the caller's customer token; empty for an operator.
	Customer string
	// Operator is true when the caller sent the operator token (RequireOrOperator only).
	Operator bool
}

// Owns reports whether the caller may read what belongs to customer: an operator may read
// anything, a customer only what is theirs. An empty customer (a row stored before the service
// knew whose it is) belongs to no customer.
func (c Caller) Owns(customer string) bool {
	return c.Operator || (c.Customer != "" && c.Customer == customer)
}

// callerKey is the context key of the Caller.
type callerKey struct{}

// WithCaller returns ctx carrying c (the middleware does this; tests of handlers may too).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller that the middleware put in ctx; false when there is none.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Require admits only customers: a request without `Authorization: Bearer <customer token>`, or
// with a token that v does not accept, is answered 401 `{"code":"unauthorized"}`. The customer id
// is then in the request's context (FromContext). A nil v closes the endpoints: every request is
// refused (403), as the operator endpoints are without ADMIN_TOKEN.
func Require(v *Verifier, log zerolog.Logger) func(http.Handler) http.Handler {
	return authenticate(v, "", log)
}

// RequireOrOperator admits customers, as Require does, and operators: a request that carries the
// operator token (adminToken; empty: no operator is admitted) passes as Caller{Operator: true}.
func RequireOrOperator(v *Verifier, adminToken string, log zerolog.Logger) func(http.Handler) http.Handler {
	return authenticate(v, adminToken, log)
}

func authenticate(v *Verifier, adminToken string, log zerolog.Logger) func(http.Handler) http.Handler {
	admin := []byte("Bearer " + adminToken)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			header := r.Header.Get("Authorization")
			if adminToken != "" && subtle.ConstantTimeCompare([]byte(header), admin) == 1 {
				next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), Caller{Operator: true})))
				return
			}
			if v == nil {
				msghttp.WriteError(w, r, log, fault.Errorf(fault.Forbidden,
					"customer endpoints are closed: this service was started without %s", PublicKeyEnv))
				return
			}
			scheme, token, ok := strings.Cut(header, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
				unauthorized(w, r, log, "send Authorization: Bearer <customer token>")
				return
			}
			subject, err := v.Verify(strings.TrimSpace(token))
			if err != nil {
				log.Debug().Err(err).Str("path", r.URL.Path).Msg("customer token refused")
				unauthorized(w, r, log, "the customer token is invalid or has expired")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), Caller{Customer: subject})))
		})
	}
}

// unauthorized answers 401 with a WWW-Authenticate challenge (RFC 6750).
func unauthorized(w http.ResponseWriter, r *http.Request, log zerolog.Logger, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="customer"`)
	msghttp.WriteError(w, r, log, fault.Errorf(fault.Unauthorized, "%s", msg))
}
