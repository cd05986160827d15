// Package app holds the notification service's use case: send the notifications a consumed
// event calls for, once per event (Notify). It cannot be one transaction, since the webhook must
// not be called with one open:
//
//  1. probe the inbox: an event processed before is skipped (no POST);
//  2. POST each notification (the webhook client retries; its outage is messaging.Outage);
//  3. in one transaction: the inbox row and the record of what was sent.
//
// A crash between 2 and 3 redelivers the event and POSTs it again with the same
// Idempotency-Key, which the webhook drops: at least once, every repeat under the same key
// (invariant 6).
package app

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/notification"
)

// Webhook sends one notification; *webhook.Client implements it.
type Webhook interface {
	Post(ctx context.Context, n notification.Notification) error
}

// Sent is the record of what the webhook accepted, written in the use case's transaction;
// *postgres.SentNotifications implements it.
type Sent interface {
	Record(ctx context.Context, tx *sql.Tx, ns []notification.Notification) error
}

// App is the notification service's use case over its database and the webhook.
type App struct {
	saga     *msgpg.Saga
	sent     Sent
	webhook  Webhook
	notified *prometheus.CounterVec
}

// New returns the use case over db and webhook; its metrics are registered on reg.
func New(db *sql.DB, sent Sent, webhook Webhook, reg prometheus.Registerer) *App {
	a := &App{saga: &msgpg.Saga{DB: db}, sent: sent, webhook: webhook,
		notified: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "notification_sent_total",
			Help: "Notifications the webhook accepted, counted when their event is marked processed, by kind."}, []string{"kind"}),
	}
	a.notified.WithLabelValues(string(notification.KindCustomer)) // exported from the start: a rate() sees zeros
	a.notified.WithLabelValues(string(notification.KindAlert))
	return a
}

// Notify sends the notifications that e, the event of the consumed message m, calls for
// (notification.For) and marks m processed once the webhook accepted every one of them; an
// event processed before sends nothing.
func (a *App) Notify(ctx context.Context, m *messaging.Message, e notification.Event) error {
	ns := notification.For(e)
	if done, err := a.saga.Processed(ctx, m); err != nil || done {
		if done {
			zerolog.Ctx(ctx).Info().Msg("notified before; skipped")
		}
		return err
	}
	for _, n := range ns {
		if err := a.webhook.Post(ctx, n); err != nil {
			return fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err)
		}
	}
	return a.saga.Handle(func(ctx context.Context, tx *sql.Tx, _ *messaging.Message) (msgpg.Result, error) {
		return msgpg.Result{Done: func(log *zerolog.Logger) {
			keys := make([]string, len(ns))
			for i, n := range ns {
				keys[i] = n.Key()
				a.notified.WithLabelValues(string(n.Kind)).Inc()
			}
			log.Info().Strs("keys", keys).Msg("notified")
		}}, a.sent.Record(ctx, tx, ns)
	})(ctx, m)
}
