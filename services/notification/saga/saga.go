// Package saga holds the notification service's step: for every event that calls for
// notifications (notification.Notified) it sends them to the webhook and then marks the event
// processed, and the Router that lists those events and the ones it knowingly ignores.
//
// The step cannot be one transaction, since the webhook must not be called with one open:
//
//  1. probe the inbox: an event processed before is skipped (no POST);
//  2. POST each notification (the webhook client retries; its outage is messaging.Outage);
//  3. in one transaction: the inbox row and the record of what was sent.
//
// A crash between 2 and 3 redelivers the event and POSTs it again with the same
// Idempotency-Key, which the webhook drops: at least once, every repeat under the same key
// (invariant 6). The service emits no saga events; its dead letters go out through its outbox.
package saga

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/upcast"
	"outboxsaga.dev/notification"
)

// Topics are the topics the notification service consumes. Every record of quarantine-events is
// poison by construction (kafka.OnItsTopic refuses it): its dead letter is the operators' alert.
var Topics = []string{messaging.TopicOrder, messaging.TopicShipping, messaging.TopicDeadLetter, messaging.TopicQuarantine}

// Ignored are the event types on Topics that call for no notification.
var Ignored = []string{"OrderCreated", "DeliveryScheduled", "DeliveryDelivered"}

// Webhook sends one notification; *webhook.Client implements it.
type Webhook interface {
	Post(ctx context.Context, n notification.Notification) error
}

// Sent is the record of what the webhook accepted, written in the step's transaction;
// *postgres.SentNotifications implements it.
type Sent interface {
	Record(ctx context.Context, tx *sql.Tx, ns []notification.Notification) error
}

// Steps runs the notification step against the service's database and the webhook.
type Steps struct {
	saga    *msgpg.Saga
	sent    Sent
	webhook Webhook

	notified *prometheus.CounterVec
	dropped  prometheus.Counter
}

// New returns the steps over db and webhook; their metrics are registered on reg.
func New(db *sql.DB, sent Sent, webhook Webhook, reg prometheus.Registerer) *Steps {
	metrics := promauto.With(reg)
	s := &Steps{saga: &msgpg.Saga{DB: db}, sent: sent, webhook: webhook,
		notified: metrics.NewCounterVec(prometheus.CounterOpts{Name: "notification_sent_total",
			Help: "Notifications the webhook accepted, counted when their event is marked processed, by kind."}, []string{"kind"}),
		dropped: metrics.NewCounter(prometheus.CounterOpts{Name: "notification_loop_guard_dropped_total",
			Help: "Alerts on this service's own dead letters of dead-letter-events that failed and were dropped, not dead-lettered again."}),
	}
	s.notified.WithLabelValues(string(notification.Customer)) // exported from the start: a rate() sees zeros
	s.notified.WithLabelValues(string(notification.Alert))
	return s
}

// Router returns the router of the notification service: Notify for every notified event type,
// the others of its topics ignored. Anything else is poison (dead-lettered). Notify POSTs to the
// webhook before its transaction, so it never joins a batch (Handle, not HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	for _, t := range notification.Notified {
		r.Handle(t, 1, s.Notify)
	}
	up := upcast.New()
	for _, t := range Ignored {
		r.Ignore(t, up.Latest(t)) // older versions arrive upcast (messaging/upcast)
	}
	return r
}

// Notify sends the notifications m calls for (notification.For) and marks m processed once
// the webhook accepted every one of them.
//
// Loop guard: a DeadLettered of this service's own from dead-letter-events (notification.Event
// Loops: it could not handle a DeadLettered) is alerted on once like any other; if that fails for
// any reason but an outage (a 4xx, a panic, a broken row), the failure is logged and counted and
// the event dropped instead of dead-lettered, since each dead letter here would make another
// DeadLettered on the same topic, for ever. The dead letter it tells of stays listed in
// GET /dead-letters.
func (s *Steps) Notify(ctx context.Context, m *messaging.Message) (err error) {
	e := notification.Event{ID: m.EventID, Type: m.EventType, AggregateID: m.AggregateID}
	if err := m.DecodeData(&e.Data); err != nil {
		return err
	}
	if e.Loops() {
		defer s.guard(ctx, m, &err)
	}
	ns := notification.For(e)
	if done, err := s.saga.Processed(ctx, m); err != nil || done {
		if done {
			zerolog.Ctx(ctx).Info().Msg("notified before; skipped")
		}
		return err
	}
	for _, n := range ns {
		if err := s.webhook.Post(ctx, n); err != nil {
			return fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err)
		}
	}
	return s.saga.Handle(func(ctx context.Context, tx *sql.Tx, _ *messaging.Message) (msgpg.Result, error) {
		return msgpg.Result{Done: func(log *zerolog.Logger) {
			keys := make([]string, len(ns))
			for i, n := range ns {
				keys[i] = n.Key()
				s.notified.WithLabelValues(string(n.Kind)).Inc()
			}
			log.Info().Strs("keys", keys).Msg("notified")
		}}, s.sent.Record(ctx, tx, ns)
	})(ctx, m)
}

// guard is Notify's loop guard (deferred): it turns a panic or an error into a logged drop,
// except an outage or a shutdown, which the consumer retries as always.
func (s *Steps) guard(ctx context.Context, m *messaging.Message, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%s %s panicked: %v", m.EventType, m.EventID, p)
	}
	if *err == nil || ctx.Err() != nil || messaging.IsOutage(*err) || msgpg.IsUnavailable(*err) {
		return
	}
	s.dropped.Inc()
	zerolog.Ctx(ctx).Error().Str("error", string(messaging.Redact([]byte((*err).Error())))).
		Msg("loop guard: the alert on a dead letter of our own failed; dropped, not dead-lettered again")
	*err = nil
}
