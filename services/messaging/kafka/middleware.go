package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/upcast"
)

// Validator checks a raw envelope against the schema of its type and version;
// *schemas.Validator implements it.
type Validator interface {
	Validate(eventType string, version int, raw []byte) error
}

// Decode parses m.Value into m.Envelope and validates it against its schema, then brings it to
// the latest version of its type through the project's one upcaster (messaging/upcast: m.Data
// and m.EventVersion become the latest version's, m.Value stays the bytes that came), so that a
// Router registers each type at its latest version and reads every older one. An undecodable
// value, an unknown type or version, or a schema violation is a Permanent error (poison); m.Envelope
// then holds whatever could be decoded, for the dead letter. When the
// traceparent header is missing or invalid, m.Traceparent is derived from the envelope's traceId.
// The context logger (zerolog.Ctx) gains the event's fields, its aggregate id as "aggregateId"
// (DecodeKeyed names it as the service does).
func Decode(v Validator) messaging.Middleware { return DecodeKeyed(v, messaging.Keyed{}) }

// DecodeKeyed is Decode with the aggregate id logged under keyed.LogField().
func DecodeKeyed(v Validator, keyed messaging.Keyed) messaging.Middleware {
	idField := keyed.LogField()
	up := upcast.New()
	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) error {
			ctx, rep := withReport(ctx)
			var e messaging.Envelope
			if err := json.Unmarshal(m.Value, &e); err != nil {
				return messaging.Permanent(fmt.Errorf("decode envelope: %w", err))
			}
			m.Envelope = e // even if invalid: a dead letter records what it claimed to be
			if err := v.Validate(e.EventType, e.EventVersion, m.Value); err != nil {
				return messaging.Permanent(err)
			}
			data, version, err := up.Upcast(e.EventType, e.EventVersion, e.Data)
			if err != nil {
				return messaging.Permanent(err)
			}
			m.Data, m.EventVersion = data, version
			rep.valid = true
			if m.Traceparent.IsZero() || m.Traceparent.TraceID() != e.TraceID {
				tp, err := messaging.NewTraceparentIn(e.TraceID)
				if err != nil {
					return messaging.Permanent(err)
				}
				m.Traceparent = tp
			}
			l := zerolog.Ctx(ctx).With().Str(idField, e.AggregateID).Str("eventId", e.EventID).
				Str("eventType", e.EventType).Str("traceId", e.TraceID).Logger()
			return next(l.WithContext(ctx), m)
		}
	}
}

// OnItsTopic refuses, as poison, a decoded event that did not come on the topic its type's
// events travel on (messaging.TopicOf its aggregate type): Kafka Connect alone writes the saga
// topics, each from one service's outbox, so a PaymentAuthorized on order-events is a forgery or a
// bug, never something to apply. Put it right after Decode.
func OnItsTopic() messaging.Middleware {
	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) error {
			want := messaging.TopicOf(m.AggregateType)
			switch {
			case m.Topic == messaging.TopicQuarantine:
				return messaging.Permanent(fmt.Errorf("%s %s quarantined by the connector %s: a row of its service's outbox named the topic %s, which is not its service's; never applied",
					m.EventType, m.EventID, m.Headers["quarantinedBy"], want))
			case m.Topic != want:
				return messaging.Permanent(fmt.Errorf("%s %s came on %s; its events travel on %s", m.EventType, m.EventID, m.Topic, want))
			}
			return next(ctx, m)
		}
	}
}

// Recover turns a panic in the handler into an error (logged with its stack), so one bad message
// cannot crash the service. The error is not Permanent: Retry tries again, DeadLetter gives up.
func Recover() messaging.Middleware {
	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) (err error) {
			defer func() {
				if p := recover(); p != nil {
					zerolog.Ctx(ctx).Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("handler panicked")
					err = fmt.Errorf("handler panicked: %v", p)
				}
			}()
			return next(ctx, m)
		}
	}
}

// Retry runs the handler up to maxAttempts times while it fails with a non-Permanent error,
// waiting initial, 2×initial, ... capped at max, each with jitter (half fixed, half random).
// An error for which unavailable reports true (a dependency such as the database is down or
// unreachable: the message is not at fault) does not count against maxAttempts: Retry keeps
// trying until the handler succeeds, so an outage never sends good messages to the dead
// letters. unavailable may be nil. Retry stops early when ctx is done and returns the last error.
//
// Inside a batch (messaging.InBatch) it tries once: an error rolls the batch back, and the
// message is retried when it is handled again on its own.
func Retry(maxAttempts int, initial, max time.Duration, unavailable func(error) bool) messaging.Middleware {
	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) error {
			if messaging.InBatch(ctx) {
				return next(ctx, m)
			}
			ctx, rep := withReport(ctx)
			failures := 0 // that count against maxAttempts
			for attempt := 1; ; attempt++ {
				rep.attempts = attempt
				err := next(ctx, m)
				if err == nil || messaging.IsPermanent(err) || ctx.Err() != nil {
					return err
				}
				down := unavailable != nil && unavailable(err)
				if !down {
					failures++
				}
				if failures >= maxAttempts {
					return err
				}
				wait := backoff(attempt, initial, max)
				zerolog.Ctx(ctx).Warn().Str("error", redacted(err)).Int("attempt", attempt).Bool("dependencyDown", down).
					Dur("retryIn", wait).Msg("handler failed; retrying")
				if !sleep(ctx, wait) {
					return err
				}
			}
		}
	}
}

// DeadLetterStore keeps poison messages; *postgres.DeadLetters implements it.
type DeadLetterStore interface {
	Store(ctx context.Context, service string, m *messaging.Message, cause error, attempts int) (int64, error)
}

// DeadLetter gives up on a message whose handler failed for good (a Permanent error, or retries
// exhausted when Retry sits inside): it stores the message and returns nil, so the partition moves
// on. If storing fails it keeps trying with backoff until ctx is done, and then returns the error:
// the message is not marked and comes again. A message is never dropped. When ctx is already done
// the handler's error is passed through (shutdown, not poison).
//
// Inside a batch (messaging.InBatch) it stores nothing and passes the error through: the batch
// rolls back, and the message is dead-lettered, if it must be, when it is handled again on its
// own.
func DeadLetter(store DeadLetterStore, service string) messaging.Middleware {
	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) error {
			if messaging.InBatch(ctx) {
				return next(ctx, m)
			}
			ctx, rep := withReport(ctx)
			err := next(ctx, m)
			if err == nil || ctx.Err() != nil {
				return err
			}
			attempts := max(rep.attempts, 1)
			for try := 1; ; try++ {
				id, serr := store.Store(ctx, service, m, err, attempts)
				if serr == nil {
					rep.deadLettered = true
					zerolog.Ctx(ctx).Error().Str("error", redacted(err)).Int64("deadLetterId", id).Int("attempts", attempts).Msg("message dead-lettered")
					return nil
				}
				wait := backoff(try, 100*time.Millisecond, 5*time.Second)
				zerolog.Ctx(ctx).Error().Err(serr).Dur("retryIn", wait).Msg("store dead letter; retrying")
				if !sleep(ctx, wait) {
					return fmt.Errorf("store dead letter: %w (handler: %w)", serr, err)
				}
			}
		}
	}
}

// Log writes one line per message with its outcome (ok, dead_lettered, error), attempts and
// duration, and puts a logger with the message's coordinates into the context (zerolog.Ctx);
// Decode adds the aggregate id, eventId, eventType and traceId to it. keyed names the aggregate id
// in the line (Keyed.LogField).
//
// Inside a batch (messaging.InBatch) the line waits for the batch's commit (its duration then runs
// until the commit) and says batched; a message that fails there writes none, since the batch
// rolls back and the message is handled, and logged, again on its own.
func Log(logger zerolog.Logger, keyed messaging.Keyed) messaging.Middleware {
	idField := keyed.LogField()
	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) error {
			start := time.Now()
			ctx, rep := withReport(ctx)
			l := logger.With().Str("topic", m.Topic).Int32("partition", m.Partition).Int64("offset", m.Offset).Logger()
			err := next(l.WithContext(ctx), m)
			batched := messaging.InBatch(ctx)
			if err != nil && batched {
				return err
			}
			messaging.AfterCommit(ctx, func() {
				outcome := rep.outcome(err)
				ev := l.Info()
				if outcome != outcomeOK {
					ev = l.Warn()
				}
				if err != nil {
					ev = ev.Str("error", redacted(err))
				}
				if batched {
					ev = ev.Bool("batched", true)
				}
				ev.Str(idField, m.AggregateID).Str("eventId", m.EventID).Str("eventType", m.EventType).
					Str("traceId", m.TraceID).Str("outcome", outcome).Int("attempts", max(rep.attempts, 1)).
					Dur("duration", time.Since(start)).Msg("message handled")
			})
			return err
		}
	}
}

// Outcomes of one message, as logged and counted.
const (
	outcomeOK           = "ok"
	outcomeDeadLettered = "dead_lettered"
	outcomeError        = "error"
)

// report collects what the middleware learned about one message (shared through the context,
// so the outer Log and Metrics see what the inner Retry and DeadLetter did).
type report struct {
	attempts     int
	valid        bool // Decode validated the envelope: its event type is a bounded label
	deadLettered bool
}

type reportKey struct{}

// withReport returns the message's report, creating it if this is the outermost middleware.
func withReport(ctx context.Context) (context.Context, *report) {
	if r, ok := ctx.Value(reportKey{}).(*report); ok {
		return ctx, r
	}
	r := &report{}
	return context.WithValue(ctx, reportKey{}, r), r
}

func (r *report) outcome(err error) string {
	switch {
	case err != nil:
		return outcomeError
	case r.deadLettered:
		return outcomeDeadLettered
	default:
		return outcomeOK
	}
}

// redacted is err's text without payment tokens (messaging.Redact), for the logs; "" for nil.
func redacted(err error) string {
	if err == nil {
		return ""
	}
	return string(messaging.Redact([]byte(err.Error())))
}

// backoff returns the wait before retry number attempt (1-based): initial doubled per attempt,
// capped at max, with half of it random.
func backoff(attempt int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits for d or until ctx is done; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
