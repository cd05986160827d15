package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // the services' databases, as their runtime roles

	"outboxsaga.dev/messaging"
)

// forgery is one row a service's outbox should never publish: an event of another service.
type forgery struct {
	outbox        string // the service whose outbox (and runtime role) writes it
	aggregateType string // the service it pretends to be
	eventType     string
	data          any
}

// TestForgedOutboxRowsAreQuarantined is issue 19's first hole, tried against every service's
// outbox: a row written by a service's runtime role that names another service's aggregate type
// (a schema-valid PaymentAuthorized for a waiting order, as the shipping service once could
// write one) reaches quarantine-events, marked with the connector that read it, and never the
// other service's topic; the order it names does not move (it ends as its payment decides:
// CANCELED, the gateway never answers tok_timeout in time); the notification service dead-letters
// each quarantined record, its operators' alert; every connector keeps RUNNING.
func TestForgedOutboxRowsAreQuarantined(t *testing.T) {
	u := stackURLs()
	kc, from := watch(t, messaging.TopicQuarantine, messaging.TopicPayment, messaging.TopicOrder)
	sku := newSKU(t, u, 5)
	orderID := placeOrder(t, u, "tok_timeout", item{SKU: sku, Qty: 1, UnitPrice: 30000})
	authorized := map[string]any{"orderId": orderID, "amount": 30000, "currency": "KRW", "pgTxnId": "ch_forged"}
	forged := []forgery{
		{outbox: "order", aggregateType: "payment", eventType: "PaymentAuthorized", data: authorized},
		{outbox: "inventory", aggregateType: "payment", eventType: "PaymentAuthorized", data: authorized},
		{outbox: "shipping", aggregateType: "payment", eventType: "PaymentAuthorized", data: authorized},
		{outbox: "notification", aggregateType: "payment", eventType: "PaymentAuthorized", data: authorized},
		// The payment service's own outbox may not speak for the order: a forged OrderCompleted
		// would make shipping deliver and inventory sell.
		{outbox: "payment", aggregateType: "order", eventType: "OrderCompleted",
			data: map[string]any{"orderId": orderID, "amount": 30000, "currency": "KRW",
				"items": []map[string]any{{"sku": sku, "qty": 1, "unitPrice": 30000}}}},
	}
	ids := map[string]string{} // event id → the connector that must quarantine it
	for _, f := range forged {
		id := insertForged(t, f, orderID)
		ids[id] = f.outbox + "-outbox"
	}

	// Each reaches quarantine-events, marked by its own connector.
	deadline := time.Now().Add(45 * time.Second)
	seen := map[string]bool{}
	for len(seen) < len(ids) && time.Now().Before(deadline) {
		for _, r := range readFrom(t, kc, from, messaging.TopicQuarantine) {
			if want, ok := ids[r.Headers["id"]]; ok && !seen[r.Headers["id"]] {
				seen[r.Headers["id"]] = true
				if r.Headers["quarantinedBy"] != want {
					t.Errorf("%s quarantined by %q, want %q", r.Headers["id"], r.Headers["quarantinedBy"], want)
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for id, connector := range ids {
		if !seen[id] {
			t.Errorf("the forged row %s of %s never reached quarantine-events", id, connector)
		}
	}
	// None reaches the topic it named.
	for _, topic := range []string{messaging.TopicPayment, messaging.TopicOrder} {
		for _, r := range readFrom(t, kc, from, topic) {
			if connector, ok := ids[r.Headers["id"]]; ok {
				t.Errorf("the forged row %s of %s reached %s", r.Headers["id"], connector, topic)
			}
		}
	}

	// The order ends as its payment decides, with nothing delivered.
	if o := waitTerminal(t, u, orderID, 90*time.Second); o.Status != "CANCELED" {
		t.Errorf("the order named by the forged events ended %s/%s, want CANCELED (its gateway never answered)", o.Status, o.Reason)
	}
	if code, raw := call(t, http.MethodGet, u.shipping+"/deliveries/"+orderID, nil, adminHeader(), nil); code != http.StatusNotFound {
		t.Errorf("GET /deliveries/%s after a forged OrderCompleted: %d %s, want 404", orderID, code, raw)
	}

	// The notification service dead-letters each quarantined record: the alert.
	alerted := map[string]bool{}
	for time.Now().Before(deadline.Add(30*time.Second)) && len(alerted) < len(ids) {
		var dls []struct {
			EventID string `json:"eventId"`
			Topic   string `json:"topic"`
			Error   string `json:"error"`
		}
		if code, raw := call(t, http.MethodGet, u.notification+"/dead-letters", nil, adminHeader(), &dls); code != http.StatusOK {
			t.Fatalf("GET notification /dead-letters: %d %s", code, raw)
		}
		for _, d := range dls {
			if _, ok := ids[d.EventID]; ok && d.Topic == messaging.TopicQuarantine && strings.Contains(d.Error, "quarantined") {
				alerted[d.EventID] = true
			}
		}
		time.Sleep(time.Second)
	}
	if len(alerted) != len(ids) {
		t.Errorf("the notification service dead-lettered (alerted on) %d of the %d quarantined records", len(alerted), len(ids))
	}
	assertPipelineWhole(t, u, "forged outbox rows")
}

// insertForged writes f into its service's outbox as that service's runtime role and returns the
// forged event's id.
func insertForged(tb testing.TB, f forgery, orderID string) string {
	tb.Helper()
	dsn := os.Getenv(strings.ToUpper(f.outbox) + "_DATABASE_URL")
	if dsn == "" {
		tb.Skipf("%s_DATABASE_URL is not set (make test exports it)", strings.ToUpper(f.outbox))
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	e, err := messaging.NewEnvelope(f.aggregateType, orderID, f.eventType, 1, f.data, messaging.NewTraceparent())
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(e)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.EventID, f.aggregateType, orderID, f.eventType, string(payload), messaging.NewTraceparent().String()); err != nil {
		tb.Fatalf("insert a forged %s into %s's outbox as its runtime role: %v", f.eventType, f.outbox, err)
	}
	return e.EventID
}
