// Package fault is the one error type the services' domains return to say what kind
// of failure happened: a client mistake, a missing thing, a conflict. The HTTP layer
// maps these codes to statuses in exactly one place (messaging/httpapi.WriteError);
// any other error is an internal one.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are stable strings: HTTP clients see them in `{"code": ...}`.
const (
	Invalid       = "invalid"                // the request is malformed or breaks a rule
	NotFound      = "not_found"              // the thing asked for does not exist
	Conflict      = "conflict"               // the request clashes with the current state
	Unauthorized  = "unauthorized"           // a credential is missing or wrong
	Forbidden     = "forbidden"              // no credential could be right (the endpoint is closed)
	TooLarge      = "too_large"              // the request body is over the limit
	TooMany       = "too_many_requests"      // the caller is over a limit for now; try again later (see RetryAfter)
	MediaType     = "unsupported_media_type" // the request body is not in a format the endpoint takes
	Unprocessable = "unprocessable"          // well-formed, but it cannot be carried out (e.g. a replay that fails again)
	Unavailable   = "unavailable"            // a dependency is down; try again
	Internal      = "internal"               // anything else
)

// Error is a domain error with a machine-readable code and a message meant for the
// caller (it must not leak internals).
type Error struct {
	// Code is the kind of failure; it decides the HTTP status.
	Code    string
	Message string
	// Reason, when set, is the code the caller sees instead of Code: a precise name of the
	// problem (price_changed, unknown_sku), under the status of Code.
	Reason string
	// RetryAfter, when positive, is how long the caller should wait before trying again (the
	// HTTP Retry-After header).
	RetryAfter time.Duration
	// Fields, when set, are more members of the caller's error body, next to code and error:
	// what the caller needs to act on the error (the SKU that is sold out).
	Fields map[string]string
}

// Error implements the error interface.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Reasoned builds an *Error of kind code that the caller sees as reason.
func Reasoned(code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Limited builds a TooMany *Error that the caller sees as reason and may try again after retryAfter.
func Limited(reason string, retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Code: TooMany, Reason: reason, RetryAfter: retryAfter, Message: fmt.Sprintf(format, args...)}
}

// RetryAfter returns the RetryAfter of the first *Error in err's chain, or 0.
func RetryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// Fields returns the Fields of the first *Error in err's chain, or nil.
func Fields(err error) map[string]string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Fields
	}
	return nil
}

// Reason returns what the caller sees as the code of err: the Reason of the first *Error in
// err's chain, else its Code, else Internal.
func Reason(err error) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Reason != "" {
		return e.Reason
	}
	return Code(err)
}

// Code returns the code of the first *Error in err's chain, or Internal.
func Code(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return Internal
}

// Message returns the caller-facing message of the first *Error in err's chain, or a
// generic text for internal errors (whose details belong in the log only).
func Message(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}
