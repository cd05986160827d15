package kafka

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/tracing"
)

// HandlerConfig is what Handlers needs to wrap a service's saga router.
type HandlerConfig struct {
	Service     string // names the service in dead letters
	Validator   Validator
	DeadLetters DeadLetterStore
	// MaxAttempts is how often a message is tried before it is dead-lettered.
	MaxAttempts int
	// Unavailable tells a dependency's outage from a failure of the message (for the services:
	// messaging/postgres.IsUnavailable). Such errors are retried until the dependency is back
	// and never dead-letter the message. Nil: every error counts against MaxAttempts.
	Unavailable func(error) bool
	// Keyed names the aggregate id in the log lines (the service's Router.Keyed).
	Keyed    messaging.Keyed
	Log      zerolog.Logger
	Registry prometheus.Registerer
	// Tracer makes each record a span (Trace); the zero value records nothing.
	Tracer tracing.Tracer
}

// Handlers wraps dispatch (a service's saga router) in the two chains a service runs:
//
//   - consume, for the consumer: log, metrics, trace, dead-letter, retry, recover, decode, and the check
//     that each event came on its own topic;
//   - replay, for operator replays of dead letters: the same without dead-letter and
//     retry, so a replay that fails again reports its error at once instead of being
//     dead-lettered a second time.
func Handlers(dispatch messaging.Handler, cfg HandlerConfig) (consume, replay messaging.Handler) {
	logged, measured := Log(cfg.Log, cfg.Keyed), Metrics(cfg.Registry)
	decode, onItsTopic := DecodeKeyed(cfg.Validator, cfg.Keyed), OnItsTopic()
	traced := Trace(cfg.Tracer)
	consume = messaging.Chain(dispatch,
		logged,
		measured,
		traced,
		DeadLetter(cfg.DeadLetters, cfg.Service),
		Retry(cfg.MaxAttempts, 200*time.Millisecond, 5*time.Second, cfg.Unavailable),
		Recover(),
		decode,
		onItsTopic,
	)
	replay = messaging.Chain(dispatch, logged, measured, traced, Recover(), decode, onItsTopic)
	return consume, replay
}
