package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/kafka/kafkatest"
)

// These tests follow each input across the whole path: request → outbox → Debezium → Kafka →
// consumers → their outboxes, and look at the connectors afterwards (DESIGN.md, invariant 7: no
// sequence of requests can stop a connector). One ordinary request once stopped the order
// connector for everybody; the HTTP answer alone never showed it.

// connectors are the Debezium connectors of the stack.
var connectors = []string{"order-outbox", "inventory-outbox", "payment-outbox", "shipping-outbox", "notification-outbox"}

// assertPipelineWhole checks invariant 7 after an input: every connector and task is RUNNING and
// a plain order completes.
func assertPipelineWhole(tb testing.TB, u urls, after string) {
	tb.Helper()
	connectURL := env("CONNECT_URL", "http://127.0.0.1:8083")
	for _, c := range connectors {
		var st struct {
			Connector struct{ State string } `json:"connector"`
			Tasks     []struct {
				State string `json:"state"`
				Trace string `json:"trace"`
			} `json:"tasks"`
		}
		code, raw := call(tb, http.MethodGet, connectURL+"/connectors/"+c+"/status", nil, connectHeader(tb), &st)
		if code != http.StatusOK || st.Connector.State != "RUNNING" || len(st.Tasks) == 0 {
			tb.Fatalf("after %s: connector %s: %d %s", after, c, code, raw)
		}
		for _, t := range st.Tasks {
			if t.State != "RUNNING" {
				tb.Fatalf("after %s: connector %s has a task %s: %.600s", after, c, t.State, t.Trace)
			}
		}
	}
	sku := newSKU(tb, u, 1)
	id := placeOrder(tb, u, "tok_ok", item{SKU: sku, Qty: 1, UnitPrice: 100})
	if o := waitTerminal(tb, u, id, sagaTimeout); o.Status != "COMPLETED" {
		tb.Fatalf("after %s: a plain order ended %s/%s", after, o.Status, o.Reason)
	}
}

// rawPost sends body as it is (no re-encoding) with contentType ("" = none).
func rawPost(tb testing.TB, url, contentType string, body []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// As the customer the body names (decoded as the order service decodes it), else U1.
	var named struct {
		CustomerID string `json:"customerId"`
	}
	if json.Unmarshal(body, &named) != nil || named.CustomerID == "" || customer.CheckSubject(named.CustomerID) != nil {
		named.CustomerID = "U1" // no token can name it: the service must refuse the body first
	}
	req.Header.Set("Authorization", customerHeader(tb, named.CustomerID)["Authorization"])
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

// TestExtremeRequestsNeverStopThePipeline sends requests at and beyond every input bound. Each
// gets the answer it deserves (a 4xx naming the problem, or 202 for one that is valid however
// odd), and after each one the whole pipeline still works.
func TestExtremeRequestsNeverStopThePipeline(t *testing.T) {
	u := stackURLs()
	line := func(sku string, qty, price any) string {
		return fmt.Sprintf(`{"sku":%q,"qty":%v,"unitPrice":%v}`, sku, qty, price)
	}
	order := func(customer, token string, lines ...string) []byte {
		c, _ := json.Marshal(customer)
		tk, _ := json.Marshal(token)
		return []byte(`{"customerId":` + string(c) + `,"currency":"KRW","paymentToken":` + string(tk) +
			`,"items":[` + strings.Join(lines, ",") + `]}`)
	}
	sku := pricedSKU(t, u, 100, 100)
	plain := line(sku, 1, 100)
	manyLines := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = line(fmt.Sprintf("%s-%d", sku, i), 1, 1)
		}
		return out
	}
	tests := []struct {
		name        string
		contentType string
		body        []byte
		wantStatus  int
		mention     string
	}{
		// The two requests that used to stop the order connector.
		{name: "1 MiB customerId", body: order(strings.Repeat("x", 1<<20-80), "tok_ok", plain), wantStatus: 413},
		{name: "wrapping quantities", body: order("U1", "tok_ok", line(sku, math.MaxInt64, 0), line(sku, math.MaxInt64-3, 0), line(sku, 1, 1)),
			wantStatus: 400, mention: "items[0].qty"},
		{name: "body just over 64 KiB", body: order(strings.Repeat("x", 64<<10), "tok_ok", plain), wantStatus: 413},
		{name: "body under 64 KiB, customerId too long", body: order(strings.Repeat("x", 60<<10), "tok_ok", plain), wantStatus: 400, mention: "customerId"},
		{name: "fractional qty", body: order("U1", "tok_ok", line(sku, 1.5, 100)), wantStatus: 400, mention: "items.qty"},
		{name: "qty in exponent form", body: order("U1", "tok_ok", line(sku, "1e3", 100)), wantStatus: 400, mention: "items.qty"},
		{name: "huge number", body: order("U1", "tok_ok", line(sku, 1, "1e400")), wantStatus: 400, mention: "items.unitPrice"},
		{name: "number beyond int64", body: order("U1", "tok_ok", line(sku, "92233720368547758070", 1)), wantStatus: 400, mention: "items.qty"},
		{name: "qty over 10,000", body: order("U1", "tok_ok", line(sku, 10001, 1)), wantStatus: 400, mention: "items[0].qty"},
		{name: "price over 10^12", body: order("U1", "tok_ok", line(sku, 1, 1_000_000_000_001)), wantStatus: 400, mention: "items[0].unitPrice"},
		{name: "negative price", body: order("U1", "tok_ok", line(sku, 1, -1)), wantStatus: 400, mention: "items[0].unitPrice"},
		{name: "duplicate SKUs", body: order("U1", "tok_ok", plain, plain), wantStatus: 400, mention: "items[1].sku"},
		{name: "51 lines", body: order("U1", "tok_ok", manyLines(51)...), wantStatus: 400, mention: "at most 50 lines"},
		{name: "SKU with a slash", body: order("U1", "tok_ok", line("A/B", 1, 1)), wantStatus: 400, mention: "items[0].sku"},
		{name: "SKU of 65 characters", body: order("U1", "tok_ok", line(strings.Repeat("S", 65), 1, 1)), wantStatus: 400, mention: "items[0].sku"},
		{name: "NUL in customerId", body: order("U\x001", "tok_ok", plain), wantStatus: 400, mention: "customerId"},
		{name: "escape sequence in customerId", body: order("U\x1b[31m", "tok_ok", plain), wantStatus: 400, mention: "customerId"},
		{name: "right-to-left override in paymentToken", body: order("U1", "tok\u202e_ok", plain), wantStatus: 400, mention: "paymentToken"},
		{name: "129-character paymentToken", body: order("U1", strings.Repeat("t", 129), plain), wantStatus: 400, mention: "paymentToken"},
		{name: "text/plain (a cross-site form post)", contentType: "text/plain", body: order("U1", "tok_ok", plain), wantStatus: 415},
		{name: "no content type", contentType: "-", body: order("U1", "tok_ok", plain), wantStatus: 415},
		{name: "not JSON", body: []byte("{{{{"), wantStatus: 400, mention: "malformed"},
		{name: "deeply nested JSON", body: []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000)), wantStatus: 400},
		// Valid however odd: accepted, and the order completes.
		{name: "128 four-byte characters in customerId", body: order(strings.Repeat("😀", 128), "tok_ok", plain), wantStatus: 202},
		{name: "quotes, backslashes and HTML in customerId", body: order(`"\<script>&'`+"한국어", "tok_ok", plain), wantStatus: 202},
		{name: "invalid UTF-8 in customerId (decoded as U+FFFD)", body: []byte(strings.Replace(string(order("U1", "tok_ok", plain)), "U1", "U\xff\xfe", 1)), wantStatus: 202},
	}
	for _, tt := range tests {
		ct := tt.contentType
		switch ct {
		case "":
			ct = "application/json"
		case "-":
			ct = ""
		}
		code, raw := rawPost(t, u.order+"/orders", ct, tt.body)
		if code != tt.wantStatus || !strings.Contains(string(raw), tt.mention) {
			t.Fatalf("%s: %d %.300s; want %d mentioning %q", tt.name, code, raw, tt.wantStatus, tt.mention)
		}
		if code == http.StatusAccepted {
			var got struct{ OrderID string }
			_ = json.Unmarshal(raw, &got)
			if o := waitTerminal(t, u, got.OrderID, sagaTimeout); o.Status != "COMPLETED" {
				t.Fatalf("%s: the order ended %s/%s", tt.name, o.Status, o.Reason)
			}
		} else if len(raw) > 1024 {
			t.Errorf("%s: an error answer of %d bytes; quote the client short", tt.name, len(raw))
		}
		assertPipelineWhole(t, u, tt.name)
	}
}

// TestLargestOrderCompletes places the largest order the bounds allow: 50 lines of 10,000 units
// at prices near 10^12, a 128-character customer id of four-byte characters. It completes, and
// its amount, which a float64 cannot hold, is exact everywhere: the order, the events on Kafka,
// the payment, the gateway's ledger.
func TestLargestOrderCompletes(t *testing.T) {
	u := stackURLs()
	kc, from := watch(t, sagaTopics...)
	var items []item
	var want int64
	for i := range 50 {
		price := int64(1_000_000_000_000 - i)
		it := item{SKU: newSKU(t, u, 10_000), Qty: 10_000, UnitPrice: price}
		setPrice(t, u, it.SKU, price)
		items = append(items, it)
		want += 10_000 * price
	}
	if int64(float64(want)) == want {
		t.Fatalf("amount %d fits a float64: the test would not see a float64 on the way", want)
	}
	req := orderRequest{CustomerID: strings.Repeat("𝄞", 128), Currency: "KRW", PaymentToken: "tok_ok", Items: items}
	var got struct{ OrderID string }
	if code, raw := call(t, http.MethodPost, u.order+"/orders", req, customerHeader(t, req.CustomerID), &got); code != http.StatusAccepted {
		t.Fatalf("POST /orders: %d %s", code, raw)
	}
	o := waitTerminal(t, u, got.OrderID, sagaTimeout)
	if o.Status != "COMPLETED" || o.Amount != want || o.CustomerID != req.CustomerID {
		t.Fatalf("order %s: %s amount %d customer %q; want COMPLETED %d", o.OrderID, o.Status, o.Amount, o.CustomerID, want)
	}
	recs := recordsFor(t, kc, from, got.OrderID, 30*time.Second, "OrderCreated", "StockReserved", "PaymentAuthorized", "OrderCompleted")
	checked := 0
	for _, r := range recs {
		dec := json.NewDecoder(bytes.NewReader(r.Value))
		dec.UseNumber()
		var e struct {
			EventType string `json:"eventType"`
			Data      struct {
				Amount json.Number `json:"amount"`
			} `json:"data"`
		}
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		if e.Data.Amount == "" { // StockCommitted, StockReleased: no amount
			continue
		}
		checked++
		if e.Data.Amount.String() != fmt.Sprint(want) {
			t.Errorf("%s on Kafka carries amount %s, want %d", e.EventType, e.Data.Amount, want)
		}
	}
	if checked < 4 {
		t.Errorf("checked the amount of %d events on Kafka, want 4 (OrderCreated, StockReserved, PaymentAuthorized, OrderCompleted)", checked)
	}
	var p payment
	if code, raw := call(t, http.MethodGet, u.payment+"/payments/"+got.OrderID, nil, customerHeader(t, req.CustomerID), &p); code != http.StatusOK || p.Amount != want {
		t.Fatalf("payment: %d %s, want amount %d", code, raw, want)
	}
	if cs := charges(t, u, got.OrderID); len(cs) != 1 || cs[0].Amount != want || cs[0].Status != "APPROVED" {
		t.Fatalf("ledger %+v, want one APPROVED charge of %d", cs, want)
	}
	for _, it := range items {
		waitStock(t, u, stock{it.SKU, 0, 0, 10_000}, 15*time.Second)
	}
	assertPipelineWhole(t, u, "the largest order")
}

// TestHugePoisonOnEveryTopic writes records with ~600 KB keys and ~300 KB values (together near
// Kafka's 1 MiB limit) to every topic a service consumes. Every consumer dead-letters them, the
// DeadLettered events it emits stay small (they copy only excerpts), and no connector stops.
func TestHugePoisonOnEveryTopic(t *testing.T) {
	u := stackURLs()
	cfg := kafkatest.Config(t) // the test-only principal: it may write to the event topics
	cfg.Producer.MaxMessageBytes = 1 << 20
	kc, err := sarama.NewClient(kafkatest.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	from := snapshotOffsets(t, kc, "dead-letter-events")

	stamp := fmt.Sprint(time.Now().UnixNano())
	consumers := map[string][]struct{ group, url string }{
		"order-events":     {{"inventory-service", u.inventory}, {"payment-service", u.payment}},
		"inventory-events": {{"order-service", u.order}, {"payment-service", u.payment}},
		"payment-events":   {{"order-service", u.order}},
	}
	var keys []string
	for topic, groups := range consumers {
		key := "huge-" + topic + "-" + stamp + "-" + strings.Repeat("k", 600_000)
		keys = append(keys, key)
		msgs := []*sarama.ProducerMessage{
			{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(bytes.Repeat([]byte{0xff, '{'}, 150_000))},
			{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(`{"eventId":"` + strings.Repeat("9", 300_000) + `"}`)},
		}
		produce(t, kc, msgs...)
		for _, g := range groups {
			consumedAsDeadLetters(t, kc, g.group, g.url, key, msgs)
		}
	}
	// Their DeadLettered events reach dead-letter-events, small, keyed by a digest of the key.
	eventually.Holds(t, 60*time.Second, func() string {
		n := 0
		for _, r := range readFrom(t, kc, from, "dead-letter-events") {
			for _, k := range keys {
				if strings.Contains(string(r.Value), k[:len("huge-")+40]) {
					n++
					if len(r.Value) > 8<<10 || len(r.Key) > 128 {
						return fmt.Sprintf("a DeadLettered event of %d bytes with a key of %d bytes", len(r.Value), len(r.Key))
					}
				}
			}
		}
		if n < 10 { // 5 consumer × topic pairs, 2 records each
			return fmt.Sprintf("%d of 10 DeadLettered events of the huge records on dead-letter-events", n)
		}
		return ""
	})
	assertPipelineWhole(t, u, "huge poison on every topic")
}
