package e2e

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"
)

// TestEventSourcedOrder (issue 21): an order placed with a channel completes; what reached
// order-events is the event store's rows byte for byte (order_events, read as the order service's
// runtime role when ORDER_DATABASE_URL is set); GET /orders/{id}/history lists the order's own
// events with their seq, version and time, token redacted; ?asOf= answers the order as it was
// (PENDING when it was placed, 404 before, the current order now). OrderCreated is v2 with the
// channel, or v1 without one while the service runs with ORDER_CREATED_VERSION=1.
func TestEventSourcedOrder(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	kc, from := watch(t, sagaTopics...)
	validator := mustValidator(t)
	sku := pricedSKU(t, u, 3, 4200)
	req := map[string]any{"currency": "KRW", "paymentToken": "tok_ok", "channel": "web", "items": []item{{sku, 1, 4200}}}
	var created struct {
		OrderID string `json:"orderId"`
	}
	if code, raw := call(t, http.MethodPost, u.order+"/orders", req, customerHeader(t, e2eCustomer), &created); code != http.StatusAccepted {
		t.Fatalf("POST /orders: %d %s", code, raw)
	}
	id := created.OrderID
	if o := waitTerminal(t, u, id, sagaTimeout); o.Status != "COMPLETED" {
		t.Fatalf("order ended %s/%s", o.Status, o.Reason)
	}
	records := recordsFor(t, kc, from, id, 20*time.Second, "OrderCreated", "OrderCompleted")

	var history []struct {
		Seq          int             `json:"seq"`
		EventID      string          `json:"eventId"`
		EventType    string          `json:"eventType"`
		EventVersion int             `json:"eventVersion"`
		OccurredAt   time.Time       `json:"occurredAt"`
		Data         json.RawMessage `json:"data"`
	}
	if code, raw := call(t, http.MethodGet, u.order+"/orders/"+id+"/history", nil, customerHeader(t, e2eCustomer), &history); code != http.StatusOK {
		t.Fatalf("GET history: %d %s", code, raw)
	}
	if len(history) != 2 || history[0].Seq != 1 || history[0].EventType != "OrderCreated" || history[1].Seq != 2 || history[1].EventType != "OrderCompleted" {
		t.Fatalf("history = %+v, want OrderCreated (1), OrderCompleted (2)", history)
	}
	var data struct {
		PaymentToken string `json:"paymentToken"`
		Channel      string `json:"channel"`
	}
	if err := json.Unmarshal(history[0].Data, &data); err != nil || data.PaymentToken == "tok_ok" {
		t.Errorf("history's OrderCreated data %s: the token is not redacted", history[0].Data)
	}
	switch history[0].EventVersion {
	case 2:
		if data.Channel != "web" {
			t.Errorf("OrderCreated v2 has channel %q, want web", data.Channel)
		}
	case 1:
		t.Logf("the order service writes OrderCreated v1 (ORDER_CREATED_VERSION=1): no channel")
	default:
		t.Errorf("OrderCreated v%d", history[0].EventVersion)
	}

	store := eventStore(t)
	compared := 0
	for _, r := range records {
		if r.Topic != "order-events" {
			continue // the other services' events of the saga
		}
		var e struct {
			envelope
			OccurredAt time.Time `json:"occurredAt"`
		}
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		if err := validator.Validate(e.EventType, e.EventVersion, r.Value); err != nil {
			t.Errorf("%s on Kafka does not match its schema: %v", e.EventType, err)
		}
		h := history[0]
		if e.EventType == "OrderCompleted" {
			h = history[1]
		}
		if e.EventID != h.EventID || e.EventVersion != h.EventVersion || !e.OccurredAt.Equal(h.OccurredAt) {
			t.Errorf("%s on Kafka (%s v%d %s) is not the history's (%s v%d %s)", e.EventType, e.EventID, e.EventVersion, e.OccurredAt,
				h.EventID, h.EventVersion, h.OccurredAt)
		}
		if payload, ok := store[e.EventID]; ok {
			compared++
			if payload != string(r.Value) {
				t.Errorf("%s on Kafka differs from the event store's row:\nkafka %s\nstore %s", e.EventType, r.Value, payload)
			}
		}
	}
	t.Logf("%d Kafka values compared byte for byte with the event store's rows", compared)

	asOf := func(at time.Time) (int, order) {
		var o order
		code, _ := call(t, http.MethodGet, u.order+"/orders/"+id+"?asOf="+url.QueryEscape(at.Format(time.RFC3339Nano)), nil, customerHeader(t, e2eCustomer), &o)
		return code, o
	}
	if code, o := asOf(history[0].OccurredAt); code != http.StatusOK || o.Status != "PENDING" {
		t.Errorf("as of its OrderCreated: %d %+v, want PENDING", code, o)
	}
	if code, _ := asOf(history[0].OccurredAt.Add(-time.Millisecond)); code != http.StatusNotFound {
		t.Errorf("as of before it existed: %d, want 404", code)
	}
	if code, o := asOf(time.Now().Add(time.Minute)); code != http.StatusOK || o.Status != "COMPLETED" {
		t.Errorf("as of now: %d %+v, want COMPLETED", code, o)
	}
	if code, raw := call(t, http.MethodGet, u.order+"/orders/"+id+"?asOf=yesterday", nil, customerHeader(t, e2eCustomer), nil); code != http.StatusBadRequest {
		t.Errorf("asOf=yesterday: %d %s, want 400", code, raw)
	}
}

// eventStore returns the payloads of order_events by event id, read as the order service's runtime
// role (ORDER_DATABASE_URL); none when it is not set.
func eventStore(tb testing.TB) map[string]string {
	tb.Helper()
	dsn := os.Getenv("ORDER_DATABASE_URL")
	out := map[string]string{}
	if dsn == "" {
		tb.Log("ORDER_DATABASE_URL is not set: the Kafka values are not compared with the event store")
		return out
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id::text, payload FROM order_events WHERE recorded_at > now() - interval '10 minutes'`)
	if err != nil {
		tb.Fatalf("read order_events: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, payload string
		if err := rows.Scan(&id, &payload); err != nil {
			tb.Fatal(err)
		}
		out[id] = payload
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}
