// Package wiring wires the notification service: the shared service runtime (messaging/service)
// plus what is the notification service's own: its webhook client, its record of what was sent,
// its step, its route and the Alertmanager relay (alertrelay). Run is the whole service; a test starts it with a Config and a listener
// of its own and stops it by canceling the context.
package wiring

import (
	"cmp"
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/alertrelay"
	"outboxsaga.dev/notification/app"
	"outboxsaga.dev/notification/httpapi"
	"outboxsaga.dev/notification/postgres"
	"outboxsaga.dev/notification/saga"
	"outboxsaga.dev/notification/webhook"
	"outboxsaga.dev/stack"
)

// Service names the service in dead letters, the Kafka client id, the logs and its settings
// (NOTIFICATION_*); its row of the stack's table (outboxsaga.dev/stack) holds its port.
const Service = notification.Service

// The adapters implement what the saga and the HTTP routes need of them.
var (
	_ app.Sent       = (*postgres.SentNotifications)(nil)
	_ app.Webhook    = (*webhook.Client)(nil)
	_ httpapi.Lister = (*postgres.SentNotifications)(nil)
)

// Config is the service's configuration: the settings every service has and the notification
// service's own, read from NOTIFICATION_* variables by LoadConfig.
type Config struct {
	service.Config
	// WebhookURL is where notifications are POSTed: NOTIFICATION_WEBHOOK_URL, or
	// NOTIFY_WEBHOOK_URL (DESIGN.md's name) when that is unset, or the webhook sink's /hooks on the
	// native stack (the stack table's webhooksink).
	WebhookURL string `split_words:"true"`
	// WebhookTimeout bounds one call to the webhook.
	WebhookTimeout time.Duration `split_words:"true" default:"2s"`
	// WebhookSecret signs every call (Standard Webhooks, `whsec_<base64 of the key>`):
	// NOTIFICATION_WEBHOOK_SECRET. Required: the service does not start without it.
	WebhookSecret string `split_words:"true"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) {
	cfg, err := service.Load[Config](Service, stack.Service(Service).Port)
	cfg.WebhookURL = cmp.Or(cfg.WebhookURL, os.Getenv("NOTIFY_WEBHOOK_URL"), stack.Service("webhooksink").URL()+"/hooks")
	switch {
	case err != nil:
	case cfg.WebhookTimeout <= 0:
		err = errors.New("read config: NOTIFICATION_WEBHOOK_TIMEOUT must be positive")
	case cfg.WebhookSecret == "":
		err = errors.New("read config: NOTIFICATION_WEBHOOK_SECRET is not set: notifications must be signed (whsec_<base64 key>, the webhook sink's WEBHOOKSINK_SECRET)")
	}
	return cfg, err
}

// Run runs the service on ln until ctx is canceled, then shuts down and returns nil. It returns
// an error when the service cannot start (configuration, database, migrations) or when one of
// its parts fails.
func Run(ctx context.Context, cfg Config, ln net.Listener, log zerolog.Logger) error {
	return service.Run(ctx, Service, cfg.Config, ln, log, postgres.Migrations, func(svc *service.Service) (service.Mount, error) {
		hook, err := webhook.New(webhook.Config{URL: cfg.WebhookURL, Timeout: cfg.WebhookTimeout, Secret: cfg.WebhookSecret,
			Transport: svc.Tracer.Transport("webhook", nil)}, svc.Registry)
		if err != nil {
			return nil, err
		}
		sent := postgres.NewSentNotifications(svc.DB)
		svc.Consume(saga.Topics, saga.New(app.New(svc.DB, sent, hook, svc.Registry), svc.Registry).Router())
		return func(r chi.Router) {
			httpapi.Routes(r, httpapi.Config{Sent: sent, AdminToken: cfg.AdminToken, Log: svc.Log})
			// Alertmanager's receiver (infra/prometheus/alertmanager.yml): alerts go straight to
			// the webhook, never through the outbox and Kafka they may be about.
			r.With(msghttp.RequireAdmin(cfg.AdminToken, svc.Log)).Post("/alertmanager", alertrelay.Handler(hook, svc.Log))
		}, nil
	})
}
