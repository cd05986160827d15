package messaging

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Traceparent is a W3C Trace Context traceparent (version 00): a trace id shared by every event
// of one saga and a span id naming one step. The zero value means "none".
type Traceparent struct {
	traceID [16]byte
	spanID  [8]byte
	flags   byte
}

// NewTraceparent starts a new, sampled trace.
func NewTraceparent() Traceparent {
	var t Traceparent
	rand.Read(t.traceID[:])
	rand.Read(t.spanID[:])
	t.flags = 0x01
	return t
}

// NewTraceparentIn returns a traceparent in the trace traceID (32 lowercase hex digits) with a new
// span id; used when only an envelope's traceId is at hand.
func NewTraceparentIn(traceID string) (Traceparent, error) {
	var t Traceparent
	if err := decodeHex(t.traceID[:], traceID); err != nil || isZero(t.traceID[:]) {
		return Traceparent{}, fmt.Errorf("trace id %q: want 32 lowercase hex digits, not all zero", traceID)
	}
	rand.Read(t.spanID[:])
	t.flags = 0x01
	return t, nil
}

// ParseTraceparent parses a traceparent header value such as
// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01. A version other than 00 (and not ff) is
// read as 00, as the specification asks, if its first four fields have the version 00 shape.
func ParseTraceparent(s string) (Traceparent, error) {
	const size = 55 // 2+1+32+1+16+1+2
	if len(s) < size || (len(s) > size && (s[0:2] == "00" || s[size] != '-')) {
		return Traceparent{}, fmt.Errorf("parse traceparent %q: bad length", s)
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return Traceparent{}, fmt.Errorf("parse traceparent %q: bad separators", s)
	}
	var version [1]byte
	if err := decodeHex(version[:], s[0:2]); err != nil || version[0] == 0xff {
		return Traceparent{}, fmt.Errorf("parse traceparent %q: bad version", s)
	}
	var t Traceparent
	var flags [1]byte
	if err := decodeHex(t.traceID[:], s[3:35]); err != nil || isZero(t.traceID[:]) {
		return Traceparent{}, fmt.Errorf("parse traceparent %q: bad trace id", s)
	}
	if err := decodeHex(t.spanID[:], s[36:52]); err != nil || isZero(t.spanID[:]) {
		return Traceparent{}, fmt.Errorf("parse traceparent %q: bad span id", s)
	}
	if err := decodeHex(flags[:], s[53:55]); err != nil {
		return Traceparent{}, fmt.Errorf("parse traceparent %q: bad flags", s)
	}
	t.flags = flags[0]
	return t, nil
}

// Child returns the traceparent of a next step: the same trace and flags, a new span id.
func (t Traceparent) Child() Traceparent {
	c := t
	rand.Read(c.spanID[:])
	return c
}

// IsZero reports whether t is the zero value (no trace).
func (t Traceparent) IsZero() bool {
	return isZero(t.traceID[:])
}

// TraceID returns the trace id as 32 lowercase hex digits, or "" for the zero value.
func (t Traceparent) TraceID() string {
	if t.IsZero() {
		return ""
	}
	return hex.EncodeToString(t.traceID[:])
}

// SpanID returns the span id as 16 lowercase hex digits, or "" for the zero value.
func (t Traceparent) SpanID() string {
	if t.IsZero() {
		return ""
	}
	return hex.EncodeToString(t.spanID[:])
}

// String returns the header value (version 00), or "" for the zero value.
func (t Traceparent) String() string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("00-%x-%x-%02x", t.traceID, t.spanID, t.flags)
}

// decodeHex decodes exactly len(dst) bytes of lowercase hex.
func decodeHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d", 2*len(dst), len(s))
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%q is not lowercase hex", c)
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
