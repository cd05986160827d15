package alertrelay_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/alertrelay"
)

// posted records what the handler posted, or fails with err.
type posted struct {
	got []notification.Notification
	err error
}

func (p *posted) Post(_ context.Context, n notification.Notification) error {
	if p.err != nil {
		return p.err
	}
	p.got = append(p.got, n)
	return nil
}

func message(status string, alerts ...alertrelay.Alert) alertrelay.Message {
	return alertrelay.Message{
		Version: "4", GroupKey: `{}:{alertname="ConnectorNotRunning"}`, Status: status, Receiver: "webhook",
		GroupLabels: map[string]string{"alertname": "ConnectorNotRunning"}, Alerts: alerts,
	}
}

func alert(status, fingerprint string, start time.Time) alertrelay.Alert {
	return alertrelay.Alert{
		Status: status, Fingerprint: fingerprint, StartsAt: start,
		Labels:      map[string]string{"alertname": "ConnectorNotRunning", "connector": "order-outbox"},
		Annotations: map[string]string{"summary": "connector order-outbox is not RUNNING"},
	}
}

func TestNotify(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	firing := message("firing", alert("firing", "a1", t0))
	resolved := message("resolved", alert("resolved", "a1", t0))
	firingKey := mustNotify(t, firing).Key()
	tests := []struct {
		name      string
		m         alertrelay.Message
		event     string
		text      string
		sameKeyAs bool // the key equals the firing message's
		wantErr   bool
	}{
		{name: "firing", m: firing, event: alertrelay.EventFiring, text: "[FIRING:1] alertname=ConnectorNotRunning", sameKeyAs: true},
		{name: "repeat of the same", m: message("firing", alert("firing", "a1", t0)), event: alertrelay.EventFiring, text: "order-outbox is not RUNNING", sameKeyAs: true},
		{name: "resolved", m: resolved, event: alertrelay.EventResolved, text: "[RESOLVED] alertname=ConnectorNotRunning"},
		{name: "a second alert joins", m: message("firing", alert("firing", "a1", t0), alert("firing", "b2", t0)), event: alertrelay.EventFiring, text: "[FIRING:2]"},
		{name: "fires again later", m: message("firing", alert("firing", "a1", t0.Add(time.Hour))), event: alertrelay.EventFiring, text: "[FIRING:1]"},
		{name: "no group key", m: alertrelay.Message{Status: "firing", Alerts: firing.Alerts}, wantErr: true},
		{name: "unknown status", m: message("bogus", alert("firing", "a1", t0)), wantErr: true},
		{name: "no alerts", m: message("firing"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := alertrelay.Notify(tt.m)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Notify = %+v, want an error", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Kind != notification.KindAlert || n.Event != tt.event || !strings.Contains(n.Text, tt.text) {
				t.Errorf("Notify = %+v, want kind alert, event %s, text with %q", n, tt.event, tt.text)
			}
			if got := n.Key() == firingKey; got != tt.sameKeyAs {
				t.Errorf("key %s == firing's %s: %v, want %v", n.Key(), firingKey, got, tt.sameKeyAs)
			}
			if len(n.Key()) > 255 {
				t.Errorf("key of %d bytes: the sink takes at most 255", len(n.Key()))
			}
		})
	}
}

func mustNotify(t *testing.T, m alertrelay.Message) notification.Notification {
	t.Helper()
	n, err := alertrelay.Notify(m)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHandler(t *testing.T) {
	body := `{"version":"4","groupKey":"{}:{alertname=\"ServiceDown\"}","truncatedAlerts":0,"status":"firing",
	  "receiver":"webhook","groupLabels":{"alertname":"ServiceDown"},"commonLabels":{"alertname":"ServiceDown"},
	  "commonAnnotations":{},"externalURL":"http://127.0.0.1:9094",
	  "alerts":[{"status":"firing","labels":{"alertname":"ServiceDown","job":"payment"},"annotations":{"summary":"payment is down"},
	    "startsAt":"2026-12-07T12:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1:9090/graph","fingerprint":"f1"}]}`
	tests := []struct {
		name     string
		body     string
		ctype    string
		postErr  error
		wantCode int
		wantSent int
	}{
		{name: "relayed", body: body, ctype: "application/json", wantCode: http.StatusOK, wantSent: 1},
		{name: "webhook down", body: body, ctype: "application/json", postErr: errors.New("down"), wantCode: http.StatusServiceUnavailable},
		{name: "not JSON", body: body, ctype: "text/plain", wantCode: http.StatusUnsupportedMediaType},
		{name: "not Alertmanager's", body: `{"status":"firing"}`, ctype: "application/json", wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &posted{err: tt.postErr}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/alertmanager", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			alertrelay.Handler(p, zerolog.Nop())(rec, req)
			if rec.Code != tt.wantCode || len(p.got) != tt.wantSent {
				t.Fatalf("got %d (%s), %d sent; want %d, %d sent", rec.Code, rec.Body, len(p.got), tt.wantCode, tt.wantSent)
			}
			if tt.wantSent > 0 && (p.got[0].Kind != notification.KindAlert || !strings.Contains(p.got[0].Text, "payment is down")) {
				t.Errorf("sent %+v", p.got[0])
			}
		})
	}
}
