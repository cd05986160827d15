package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging/eventually"
)

// sagaTimeout bounds how long one order may take to end in these tests: the gateway
// timeout flow needs the payment service's full retry budget (about 10 s).
const sagaTimeout = 40 * time.Second

// TestSagaFlows places one order per flow and checks the final status, the stock
// figures and the gateway ledger (invariants 1–3 of DESIGN.md for that order).
func TestSagaFlows(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	tests := []struct {
		name       string
		token      string
		stocked    int64
		qty        int
		wantStatus string
		wantReason string
		wantStock  func(sku string) stock
		wantLedger []string // charge statuses
	}{
		{"happy path", "tok_ok", 5, 2, "COMPLETED", "",
			func(s string) stock { return stock{s, 3, 0, 2} }, []string{"APPROVED"}},
		{"out of stock", "tok_ok", 1, 2, "CANCELED", "OUT_OF_STOCK",
			func(s string) stock { return stock{s, 1, 0, 0} }, nil},
		{"card declined", "tok_declined", 5, 2, "CANCELED", "PAYMENT_FAILED",
			func(s string) stock { return stock{s, 5, 0, 0} }, []string{"DECLINED"}},
		{"flaky gateway", "tok_flaky", 5, 1, "COMPLETED", "",
			func(s string) stock { return stock{s, 4, 0, 1} }, []string{"APPROVED"}},
		{"gateway timeout", "tok_timeout", 5, 1, "CANCELED", "PAYMENT_FAILED",
			func(s string) stock { return stock{s, 5, 0, 0} }, []string{"VOIDED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sku := newSKU(t, u, tt.stocked)
			id := placeOrder(t, u, tt.token, item{SKU: sku, Qty: tt.qty, UnitPrice: 15000})

			o := waitTerminal(t, u, id, sagaTimeout)
			if o.Status != tt.wantStatus || o.Reason != tt.wantReason {
				t.Fatalf("order ended %s/%s, want %s/%s", o.Status, o.Reason, tt.wantStatus, tt.wantReason)
			}
			if want := int64(tt.qty) * 15000; o.Amount != want {
				t.Errorf("amount %d, want %d", o.Amount, want)
			}
			// A terminal order holds no reservation (commit and release follow the
			// order's last event, so they are awaited).
			waitStock(t, u, tt.wantStock(sku), 15*time.Second)
			eventually.Holds(t, 15*time.Second, func() string {
				var got []string
				for _, c := range charges(t, u, id) {
					got = append(got, string(c.Status))
					if c.IdempotencyKey != "pay:"+id {
						return fmt.Sprintf("charge key %q, want pay:%s", c.IdempotencyKey, id)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.wantLedger) {
					return fmt.Sprintf("ledger %v, want %v", got, tt.wantLedger)
				}
				return ""
			})
			if tt.wantStatus == "COMPLETED" {
				cs := charges(t, u, id)
				if cs[0].Amount != o.Amount {
					t.Errorf("approved charge of %d, want the order's amount %d", cs[0].Amount, o.Amount)
				}
			}
			// The status never changes after it is terminal.
			time.Sleep(time.Second)
			if again := getOrder(t, u, id); again.Status != o.Status || again.Reason != o.Reason {
				t.Errorf("terminal order moved from %s/%s to %s/%s", o.Status, o.Reason, again.Status, again.Reason)
			}
		})
	}
}

// TestEventsOnKafka follows one happy order through the three topics: every event
// is schema-valid as read from Kafka, carries the id/eventType/traceparent headers,
// is keyed by the order id, and the whole saga shares one trace id.
func TestEventsOnKafka(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	kc, from := watch(t, sagaTopics...)
	validator := mustValidator(t)
	sku := pricedSKU(t, u, 3, 9900)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	var created struct {
		OrderID string `json:"orderId"`
	}
	req := orderRequest{CustomerID: "U-trace", Currency: "KRW", PaymentToken: "tok_ok", Items: []item{{sku, 1, 9900}}}
	code, raw := call(t, http.MethodPost, u.order+"/orders", req,
		withHeaders(customerHeader(t, "U-trace"), map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}), &created)
	if code != http.StatusAccepted {
		t.Fatalf("POST /orders: %d %s", code, raw)
	}
	if o := waitTerminal(t, u, created.OrderID, sagaTimeout); o.Status != "COMPLETED" {
		t.Fatalf("order ended %s/%s", o.Status, o.Reason)
	}
	want := []string{"OrderCreated", "StockReserved", "PaymentAuthorized", "OrderCompleted", "StockCommitted"}
	records := recordsFor(t, kc, from, created.OrderID, 20*time.Second, want...)
	for _, r := range records {
		var e envelope
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("%s@%d is not a JSON envelope: %v", r.Topic, r.Offset, err)
		}
		if err := validator.Validate(e.EventType, e.EventVersion, r.Value); err != nil {
			t.Errorf("%s %s does not match its schema: %v\n%s", r.Topic, e.EventType, err, r.Value)
		}
		if r.Headers["id"] != e.EventID || r.Headers["eventType"] != e.EventType {
			t.Errorf("%s headers %v do not match the envelope (%s %s)", e.EventType, r.Headers, e.EventID, e.EventType)
		}
		if tp := r.Headers["traceparent"]; !strings.HasPrefix(tp, "00-"+traceID+"-") || e.TraceID != traceID {
			t.Errorf("%s: traceparent %q / traceId %q, want trace %s from the HTTP request", e.EventType, tp, e.TraceID, traceID)
		}
		if wantTopic := topicOf(e.EventType); r.Topic != wantTopic {
			t.Errorf("%s on %s, want %s", e.EventType, r.Topic, wantTopic)
		}
	}

	// The timeline holds every event that concerned the order, in order.
	var timeline []struct {
		EventType string `json:"eventType"`
	}
	if code, raw := call(t, http.MethodGet, u.order+"/orders/"+created.OrderID+"/events", nil, customerHeader(t, "U-trace"), &timeline); code != http.StatusOK {
		t.Fatalf("GET events: %d %s", code, raw)
	}
	var types []string
	for _, e := range timeline {
		types = append(types, e.EventType)
	}
	if len(types) == 0 || types[0] != "OrderCreated" || !contains(types, "PaymentAuthorized") || !contains(types, "OrderCompleted") {
		t.Errorf("timeline %v, want OrderCreated first, then the saga's events", types)
	}
}

func topicOf(eventType string) string {
	switch {
	case strings.HasPrefix(eventType, "Order"):
		return "order-events"
	case strings.HasPrefix(eventType, "Stock"):
		return "inventory-events"
	default:
		return "payment-events"
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestStatusStream reads GET /orders/{id}/stream: the status events of one order
// until it is terminal, then the server ends the stream.
func TestStatusStream(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	sku := newSKU(t, u, 1)
	id := placeOrder(t, u, "tok_ok", item{SKU: sku, Qty: 1, UnitPrice: 100})
	req, err := http.NewRequest(http.MethodGet, u.order+"/orders/"+id+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", customerHeader(t, e2eCustomer)["Authorization"])
	resp, err := (&http.Client{Timeout: sagaTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	var last string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() { // ends when the server closes the stream
		if line := sc.Text(); strings.HasPrefix(line, "data:") {
			last = line
		}
	}
	if !strings.Contains(last, `"COMPLETED"`) {
		t.Fatalf("last status event %q, want COMPLETED", last)
	}
}

// TestReinjectedEventsChangeNothing sends the already consumed events of a completed
// order again, byte for byte: no second reservation, no second charge, no move.
func TestReinjectedEventsChangeNothing(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	kc, from := watch(t, sagaTopics...)
	sku := newSKU(t, u, 2)
	id := orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 1, UnitPrice: 5000})
	want := stock{sku, 1, 0, 1}
	waitStock(t, u, want, 15*time.Second)
	records := recordsFor(t, kc, from, id, 20*time.Second, "OrderCreated", "StockReserved", "PaymentAuthorized", "OrderCompleted")

	resend(t, kc, records)
	if got := getStock(t, u, sku); got != want {
		t.Errorf("stock after duplicates %+v, want %+v", got, want)
	}
	if cs := charges(t, u, id); len(cs) != 1 || cs[0].Status != "APPROVED" {
		t.Errorf("ledger after duplicates %+v, want one APPROVED charge", cs)
	}
	if o := getOrder(t, u, id); o.Status != "COMPLETED" {
		t.Errorf("order after duplicates %s/%s", o.Status, o.Reason)
	}
}

// resend writes records to their topics again, byte for byte (the same event ids), and waits
// until every consuming group has handled the copies.
func resend(tb testing.TB, kc sarama.Client, records []kafkaRecord) {
	tb.Helper()
	var msgs []*sarama.ProducerMessage
	for _, r := range records {
		var hs []sarama.RecordHeader
		for _, h := range r.Raw.Headers {
			hs = append(hs, *h)
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.StringEncoder(r.Key),
			Value: sarama.ByteEncoder(r.Value), Headers: hs})
	}
	produce(tb, kc, msgs...)
	for _, m := range msgs {
		for _, g := range groupsOf(m.Topic) {
			waitConsumed(tb, kc, g, m.Topic, m.Partition, m.Offset, 20*time.Second)
		}
	}
}

// groupsOf names the consumer groups that read topic.
func groupsOf(topic string) []string {
	switch topic {
	case "order-events":
		return []string{"inventory-service", "payment-service", "shipping-service", "notification-service", "catalog-service"}
	case "inventory-events":
		return []string{"order-service", "payment-service", "catalog-service"}
	case "shipping-events":
		return []string{"order-service", "notification-service"}
	default:
		return []string{"order-service"}
	}
}

// TestPoisonGoesToDeadLetters puts records no producer of ours would write on
// order-events: each consuming service stores them as dead letters, moves on, and
// later orders still complete.
func TestPoisonGoesToDeadLetters(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	kc := mustKafkaClient(t)
	key := "poison-" + fmt.Sprint(time.Now().UnixNano())
	poison := []*sarama.ProducerMessage{
		{Topic: "order-events", Key: sarama.StringEncoder(key), Value: sarama.StringEncoder("this is not JSON")},
		{Topic: "order-events", Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(
			`{"eventId":"8d0e2f4c-3c62-4c1e-9a51-6a0c7d1f2b3a","eventType":"OrderExploded","eventVersion":1,"aggregateType":"order","aggregateId":"` + key + `","occurredAt":"2026-01-01T00:00:00Z","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","idempotencyKey":"x","data":{}}`)},
	}
	produce(t, kc, poison...)
	consumers := []struct{ group, url string }{{"inventory-service", u.inventory}, {"payment-service", u.payment},
		{"shipping-service", u.shipping}, {"notification-service", u.notification}, {"catalog-service", u.catalog}}
	for _, svc := range consumers {
		consumedAsDeadLetters(t, kc, svc.group, svc.url, key, poison)
	}
	// Every dead letter alerts the operators once: one alert per service and record.
	waitNotified(t, u, key, func(got []notified) string {
		if len(got) != len(consumers)*len(poison) {
			return fmt.Sprintf("%d alerts, want %d (one per service and poison record): %v", len(got), len(consumers)*len(poison), got)
		}
		for _, n := range got {
			if n.Body.Kind != "alert" || n.Body.Event != "DeadLettered" {
				return fmt.Sprintf("notification %+v, want only DeadLettered alerts", n)
			}
		}
		return ""
	})
	sku := newSKU(t, u, 1)
	// Later orders still complete.
	orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 1, UnitPrice: 100})
}

// TestConcurrentOrdersNoOversell races 100 orders for 10 units. Once the order service heard
// that the SKU is sold out (StockDepleted) it refuses the rest at once, 409 sold_out; those it
// accepted before end OUT_OF_STOCK (issue 22). Either way, exactly 10 complete.
func TestConcurrentOrdersNoOversell(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	sku := newSKU(t, u, 10)
	setPrice(t, u, sku, 1000)
	cust := customerHeader(t, e2eCustomer)
	req := orderRequest{CustomerID: e2eCustomer, Currency: "KRW", PaymentToken: "tok_ok", Items: []item{{SKU: sku, Qty: 1, UnitPrice: 1000}}}
	ids := make([]string, 100)
	var (
		wg      sync.WaitGroup
		soldOut atomic.Int64
	)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got struct {
				OrderID string `json:"orderId"`
			}
			code, raw := call(t, http.MethodPost, u.order+"/orders", req, cust, &got)
			switch {
			case code == http.StatusAccepted && got.OrderID != "":
				ids[i] = got.OrderID
			case code == http.StatusConflict && strings.Contains(string(raw), `"code":"sold_out"`):
				soldOut.Add(1)
			default:
				t.Errorf("POST /orders: %d %s", code, raw)
			}
		}()
	}
	wg.Wait()
	count := map[string]int{"REFUSED/sold_out": int(soldOut.Load())}
	for _, id := range ids {
		if id == "" {
			continue
		}
		o := waitTerminal(t, u, id, 2*sagaTimeout)
		count[o.Status+"/"+o.Reason]++
	}
	if count["COMPLETED/"] != 10 || count["CANCELED/OUT_OF_STOCK"]+count["REFUSED/sold_out"] != 90 {
		t.Fatalf("outcomes %v, want 10 COMPLETED and 90 CANCELED/OUT_OF_STOCK or refused sold_out", count)
	}
	waitStock(t, u, stock{sku, 0, 0, 10}, 15*time.Second)
}

// TestBadRequests checks that client mistakes get a 4xx JSON error that says what is
// wrong. (That nothing is written is checked in the order service's own tests,
// which can see its database.)
func TestBadRequests(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	ok := `{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A1","qty":1,"unitPrice":100}]}`
	tests := []struct {
		name, body string
		want       int
		mention    string
	}{
		{"malformed JSON", `{"customerId":`, 400, "malformed"},
		{"unknown field", strings.Replace(ok, `"customerId"`, `"coupon":"X","customerId"`, 1), 400, "coupon"},
		{"no items", `{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[]}`, 400, "items"},
		{"qty zero", strings.Replace(ok, `"qty":1`, `"qty":0`, 1), 400, "qty"},
		{"negative price", strings.Replace(ok, `"unitPrice":100`, `"unitPrice":-5`, 1), 400, "unitPrice"},
		{"missing token", strings.Replace(ok, `"paymentToken":"tok_ok",`, ``, 1), 400, "paymentToken"},
		{"body over 1 MiB", `{"customerId":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e struct{ Error, Code string }
			code, raw := call(t, http.MethodPost, u.order+"/orders", tt.body, customerHeader(t, "U1"), nil)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, raw)
			}
			if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("error body %s is not {\"error\",\"code\"}", raw)
			}
			if !strings.Contains(e.Error, tt.mention) {
				t.Errorf("error %q does not mention %q", e.Error, tt.mention)
			}
		})
	}
	if code, _ := call(t, http.MethodGet, u.order+"/orders/00000000-0000-4000-8000-000000000000", nil, customerHeader(t, "U1"), nil); code != 404 {
		t.Errorf("unknown order: %d, want 404", code)
	}
}

// TestSagaDeadline stops the payment service so that no payment answer comes: the
// order is canceled with reason TIMEOUT, its stock is released, and when the payment
// service comes back it charges nothing (or voids what it charged). It runs before
// the parallel tests (Go runs those after every sequential test), so stopping the
// payment service disturbs no other test.
func TestSagaDeadline(t *testing.T) {
	u := stackURLs()
	start := stopService(t, "payment")

	sku := newSKU(t, u, 3)
	id := placeOrder(t, u, "tok_ok", item{SKU: sku, Qty: 2, UnitPrice: 700})
	o := waitTerminal(t, u, id, 60*time.Second) // default ORDER_SAGA_DEADLINE is 30 s
	if o.Status != "CANCELED" || o.Reason != "TIMEOUT" {
		t.Fatalf("order ended %s/%s, want CANCELED/TIMEOUT", o.Status, o.Reason)
	}
	waitStock(t, u, stock{sku, 3, 0, 0}, 15*time.Second)
	// The customer hears of the cancel, the operators of the deadline.
	waitNotified(t, u, id, wantEvents("OrderCanceled/customer", "OrderCanceled/alert"))

	start()
	eventually.Holds(t, 30*time.Second, func() string {
		var p payment
		code, raw := call(t, http.MethodGet, u.payment+"/payments/"+id, nil, customerHeader(t, e2eCustomer), &p)
		if code != http.StatusOK || (p.Status != "CANCELED" && p.Status != "VOIDED") {
			return fmt.Sprintf("payment %d %s", code, raw)
		}
		return ""
	})
	for _, c := range charges(t, u, id) {
		if c.Status == "APPROVED" {
			t.Errorf("a timed-out order has an APPROVED charge: %+v", c)
		}
	}
	if again := getOrder(t, u, id); again.Status != "CANCELED" {
		t.Errorf("the canceled order moved to %s", again.Status)
	}
}

// stopService stops one program of the stack (scripts/services.sh) and returns what starts it
// again, which also runs when the test ends. Only a test that runs before the parallel ones (Go
// runs those after every sequential test) may stop a program the others need.
func stopService(tb testing.TB, name string) (start func()) {
	tb.Helper()
	run := func(cmd string) {
		script := filepath.Join(repoRoot(tb), "scripts", "services.sh")
		if out, err := exec.Command(script, cmd, name).CombinedOutput(); err != nil {
			tb.Fatalf("services.sh %s %s: %v\n%s", cmd, name, err, out)
		}
	}
	run("stop")
	var once sync.Once
	start = func() { once.Do(func() { run("start") }) }
	tb.Cleanup(start)
	return start
}

func repoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
