package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/messaging/eventually"
)

// alertTimeout is how long an alert may take to reach the webhook sink: ConnectorNotRunning
// fires after `for: 1m`, then Prometheus' evaluation (5 s), Alertmanager's group_wait (10 s) and
// the relay; a resolved alert waits for the group's next flush (group_interval: 1m).
const alertTimeout = 2 * time.Minute

// alertsReceived lists the alert notifications Alertmanager's relay posted to the webhook sink
// (their keys start with "alertmanager-"), each with the key its body's eventId and kind make.
func alertsReceived(tb testing.TB, u urls) []notified {
	tb.Helper()
	var out []notified
	for _, n := range received(tb, u, "") {
		if !strings.HasPrefix(n.Key, "alertmanager-") {
			continue
		}
		if n.Key != n.Body.EventID+":"+n.Body.Kind || n.Body.Kind != "alert" {
			tb.Fatalf("alert entry %q: body of event %s, kind %s", n.Key, n.Body.EventID, n.Body.Kind)
		}
		out = append(out, n)
	}
	return out
}

// waitAlert waits until the sink holds an alert notification that is not among before and whose
// text holds every one of want; it returns it.
func waitAlert(tb testing.TB, u urls, before map[string]bool, want ...string) notified {
	tb.Helper()
	var found notified
	eventually.Holds(tb, alertTimeout, func() string {
		for _, n := range alertsReceived(tb, u) {
			if before[n.Key] {
				continue
			}
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(n.Body.Text, w)
			}
			if ok {
				found = n
				return ""
			}
		}
		return fmt.Sprintf("no new alert at the webhook sink with %q yet", want)
	})
	return found
}

// connectorAction sends PUT /connectors/<name>/<action> (stop, resume) to Kafka Connect's REST API.
func connectorAction(tb testing.TB, name, action string) {
	tb.Helper()
	url := env("CONNECT_URL", "http://127.0.0.1:8083") + "/connectors/" + name + "/" + action
	if code, raw := call(tb, http.MethodPut, url, nil, connectHeader(tb), nil); code != http.StatusAccepted && code != http.StatusNoContent && code != http.StatusOK {
		tb.Fatalf("PUT %s: %d %s", url, code, raw)
	}
}

// TestConnectorStopAlertsAndResolves: the alert path does not depend on the CDC pipeline it
// watches. With the order connector stopped (so not even the order service's own events leave
// its database), Prometheus fires ConnectorNotRunning, and Alertmanager's notification reaches
// the webhook sink through the notification service's relay, signed, as "kind":"alert", within
// 2 minutes; once the connector resumes, the resolved notification follows.
func TestConnectorStopAlertsAndResolves(t *testing.T) {
	u := stackURLs()
	for name, url := range map[string]string{
		"Prometheus":   env("PROMETHEUS_URL", "http://127.0.0.1:9090"),
		"Alertmanager": env("ALERTMANAGER_URL", "http://127.0.0.1:9094"),
	} {
		if code, raw := call(t, http.MethodGet, url+"/-/ready", nil, nil, nil); code != http.StatusOK {
			t.Fatalf("%s at %s is not ready: %d %s (make up starts it)", name, url, code, raw)
		}
	}
	before := map[string]bool{}
	for _, n := range alertsReceived(t, u) {
		before[n.Key] = true
	}

	const connector = "order-outbox"
	start := time.Now()
	connectorAction(t, connector, "stop")
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			connectorAction(t, connector, "resume")
		}
	})

	firing := waitAlert(t, u, before, "[FIRING:", "alertname=ConnectorNotRunning", "connector "+connector)
	t.Logf("alert at the sink %s after the stop: %q", time.Since(start).Round(time.Second), firing.Body.Text)
	if firing.Body.Event != "AlertFiring" {
		t.Errorf("firing alert's event = %q, want AlertFiring", firing.Body.Event)
	}
	before[firing.Key] = true

	connectorAction(t, connector, "resume")
	resumed = true
	start = time.Now()
	resolved := waitAlert(t, u, before, "alertname=ConnectorNotRunning", "resolved: connector "+connector)
	t.Logf("resolved at the sink %s after the resume: %q", time.Since(start).Round(time.Second), resolved.Body.Text)
}
