// Package alertrelay turns Alertmanager's webhook calls into alert notifications: POST
// /alertmanager (operator token) takes Alertmanager's JSON and posts one signed, Slack-compatible
// `{"text","kind":"alert","event":"AlertFiring"|"AlertResolved",...}` body to the webhook, the
// same way (client, signature, retries) as every other notification of the service.
//
// It does not pass through the CDC pipeline it watches: no outbox, no Kafka, no database. An
// alert about a stopped connector, Kafka or Postgres still reaches the webhook as long as this
// service's process runs (when it does not, Prometheus fires ServiceDown for it and Alertmanager
// keeps retrying; see docs/architecture.md, "Alerts").
//
// Idempotency: the key of a notification is derived from Alertmanager's group key, the
// group's status and each alert's fingerprint, status and start time, so a repeat of the same
// notification (Alertmanager's retries, its repeat_interval) carries the same Idempotency-Key,
// and a change (an alert joins, one resolves) carries a new one.
package alertrelay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/notification"
)

// Event types of the notifications it posts.
const (
	EventFiring   = "AlertFiring"
	EventResolved = "AlertResolved"
)

// maxListed bounds the alerts a notification's text names one by one.
const maxListed = 10

// Message is Alertmanager's webhook body (version 4).
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Poster posts a notification to the webhook; *webhook.Client implements it.
type Poster interface {
	Post(ctx context.Context, n notification.Notification) error
}

// Notify is the alert notification of m, or a fault.Invalid error when m is not a message
// Alertmanager sends (no group key, a status other than firing or resolved, no alerts).
func Notify(m Message) (notification.Notification, error) {
	switch {
	case m.GroupKey == "":
		return notification.Notification{}, fault.Errorf(fault.Invalid, "groupKey is required")
	case m.Status != "firing" && m.Status != "resolved":
		return notification.Notification{}, fault.Errorf(fault.Invalid, "status must be firing or resolved")
	case len(m.Alerts) == 0:
		return notification.Notification{}, fault.Errorf(fault.Invalid, "alerts must not be empty")
	}
	event := EventFiring
	if m.Status == "resolved" {
		event = EventResolved
	}
	return notification.Notification{
		Text:    text(m),
		Kind:    notification.KindAlert,
		Event:   event,
		OrderID: "",
		EventID: key(m),
	}, nil
}

// key identifies what m says: its group, its status and each alert's fingerprint, status and
// start, in a stable order.
func key(m Message) string {
	parts := make([]string, 0, len(m.Alerts))
	for _, a := range m.Alerts {
		parts = append(parts, a.Fingerprint+"@"+a.StartsAt.UTC().Format(time.RFC3339Nano)+"="+a.Status)
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte(m.GroupKey + "\n" + m.Status + "\n" + strings.Join(parts, "\n")))
	return "alertmanager-" + hex.EncodeToString(sum[:16])
}

// text is the human message: a header with the status, the count and the group's labels, then a
// line per alert (at most maxListed) with its summary.
func text(m Message) string {
	var b strings.Builder
	firing := 0
	for _, a := range m.Alerts {
		if a.Status == "firing" {
			firing++
		}
	}
	if m.Status == "firing" {
		fmt.Fprintf(&b, "[FIRING:%d] %s", firing, labels(m.GroupLabels))
	} else {
		fmt.Fprintf(&b, "[RESOLVED] %s", labels(m.GroupLabels))
	}
	for i, a := range m.Alerts {
		if i == maxListed {
			fmt.Fprintf(&b, "\n… and %d more", len(m.Alerts)-maxListed)
			break
		}
		what := a.Annotations["summary"]
		if what == "" {
			what = labels(a.Labels)
		}
		fmt.Fprintf(&b, "\n- %s: %s (since %s)", a.Status, what, a.StartsAt.UTC().Format(time.RFC3339))
	}
	if m.TruncatedAlerts > 0 {
		fmt.Fprintf(&b, "\n(%d alerts more not sent by Alertmanager)", m.TruncatedAlerts)
	}
	return b.String()
}

// labels writes a label set as name=value pairs, sorted by name.
func labels(l map[string]string) string {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = n + "=" + l[n]
	}
	return strings.Join(names, " ")
}

// Handler serves POST /alertmanager: it decodes the message, posts its notification and answers
// 200 once the webhook accepted it, 503 while the webhook is down (Alertmanager retries), 400
// for a body that is not Alertmanager's.
func Handler(p Poster, log zerolog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var m Message
		if err := msghttp.DecodeJSON(w, r, &m); err != nil {
			msghttp.WriteError(w, r, log, err)
			return
		}
		n, err := Notify(m)
		if err != nil {
			msghttp.WriteError(w, r, log, err)
			return
		}
		if err := p.Post(r.Context(), n); err != nil {
			log.Warn().Err(err).Str("key", n.Key()).Msg("alert not delivered to the webhook; Alertmanager will retry")
			msghttp.WriteError(w, r, log, fault.Errorf(fault.Unavailable, "the webhook did not take the alert: %v", err))
			return
		}
		log.Info().Str("key", n.Key()).Str("status", m.Status).Int("alerts", len(m.Alerts)).Msg("alert relayed")
		msghttp.WriteJSON(w, http.StatusOK, map[string]string{"key": n.Key()})
	}
}
