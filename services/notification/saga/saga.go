// Package saga is the notification service's consumer side: the step Notify, for every event
// that calls for notifications (notification.Notified), sends them through the use case
// (package app) behind a loop guard, and the Router lists those events and the ones it knowingly
// ignores. The service emits no saga events; its dead letters go out through its outbox.
package saga

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/upcast"
	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/app"
)

// Topics are the topics the notification service consumes. Every record of quarantine-events is
// poison by construction (kafka.OnItsTopic refuses it): its dead letter is the operators' alert.
var Topics = []string{messaging.TopicOrder, messaging.TopicShipping, messaging.TopicDeadLetter, messaging.TopicQuarantine}

// Ignored are the event types on Topics that call for no notification.
var Ignored = []string{"OrderCreated", "DeliveryScheduled", "DeliveryDelivered"}

// Steps runs the notification step through the use case.
type Steps struct {
	app     *app.App
	dropped prometheus.Counter
}

// New returns the step over a; its metrics are registered on reg.
func New(a *app.App, reg prometheus.Registerer) *Steps {
	return &Steps{app: a,
		dropped: promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "notification_loop_guard_dropped_total",
			Help: "Alerts on this service's own dead letters of dead-letter-events that failed and were dropped, not dead-lettered again."}),
	}
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

// Notify sends the notifications m calls for (app.Notify), and marks m processed once the
// webhook accepted every one of them.
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
	return s.app.Notify(ctx, m, e)
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
