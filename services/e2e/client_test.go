package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/eventually"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// urls of the running services; overridable like the services' own addresses.
type urls struct{ order, inventory, payment, shipping, notification, catalog, sink, gateway string }

func stackURLs() urls {
	return urls{
		order:        env("ORDER_URL", "http://127.0.0.1:8080"),
		inventory:    env("INVENTORY_URL", "http://127.0.0.1:8081"),
		payment:      env("PAYMENT_URL", "http://127.0.0.1:8082"),
		shipping:     env("SHIPPING_URL", "http://127.0.0.1:8084"),
		notification: env("NOTIFICATION_URL", "http://127.0.0.1:8085"),
		catalog:      env("CATALOG_URL", "http://127.0.0.1:8086"),
		sink:         env("WEBHOOKSINK_URL", "http://127.0.0.1:8088"),
		gateway:      env("GATEWAY_URL", "http://127.0.0.1:8089"),
	}
}

// call sends a JSON request and decodes a JSON answer into out (if non-nil); it
// returns the status and the raw body.
func call(tb testing.TB, method, url string, body any, headers map[string]string, out any) (int, []byte) {
	tb.Helper()
	_, status, _, raw := send(tb, method, url, body, headers)
	if out != nil && status < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, url, raw, err)
		}
	}
	return status, raw
}

// send sends a request (a string body as is, anything else but nil as JSON) and returns it with
// the answer's status, header and body.
func send(tb testing.TB, method, url string, body any, headers map[string]string) (*http.Request, int, http.Header, []byte) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v (is the pipeline up? run: make up)", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return req, resp.StatusCode, resp.Header, raw
}

type item struct {
	SKU       string `json:"sku"`
	Qty       int    `json:"qty"`
	UnitPrice int64  `json:"unitPrice"`
}

type orderRequest struct {
	CustomerID   string `json:"customerId"`
	Currency     string `json:"currency"`
	PaymentToken string `json:"paymentToken"`
	Items        []item `json:"items"`
}

type order struct {
	OrderID    string `json:"orderId"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	CustomerID string `json:"customerId"`
	Items      []item `json:"items"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	Delivery   string `json:"delivery"`
}

type stock struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
}

// charge is one charge of the gateway's ledger, as the simulator answers GET /charges.
type charge = gatewaysim.Charge

type payment struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Amount  int64  `json:"amount"`
	PgTxnID string `json:"pgTxnId"`
	Reason  string `json:"reason"`
}

// newSKU returns a SKU no other test (or earlier run) uses, stocked with available units.
func newSKU(tb testing.TB, u urls, available int64) string {
	tb.Helper()
	sku := "T-" + strings.ToUpper(uuid.NewString()[:8])
	var s stock
	if code, raw := call(tb, http.MethodPut, u.inventory+"/stock/"+sku, map[string]int64{"available": available}, adminHeader(), &s); code != http.StatusOK {
		tb.Fatalf("PUT /stock/%s: %d %s", sku, code, raw)
	}
	return sku
}

// e2eCustomer places the tests' orders.
const e2eCustomer = "U-e2e"

// customerHeader is the Authorization of customer c: a token minted with the stack's key,
// CUSTOMER_TOKEN_PRIVATE_KEY (scripts/lib.sh exports it).
func customerHeader(tb testing.TB, c string) map[string]string {
	tb.Helper()
	key := os.Getenv(customer.PrivateKeyEnv)
	if key == "" {
		tb.Fatalf("%s is not set: run the e2e tests through make test (or source scripts/lib.sh)", customer.PrivateKeyEnv)
	}
	tok, err := customer.Mint(key, c, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return map[string]string{"Authorization": "Bearer " + tok}
}

// withHeaders returns the union of hs (later ones win).
func withHeaders(hs ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		maps.Copy(out, h)
	}
	return out
}

func adminHeader() map[string]string {
	if t := os.Getenv("ADMIN_TOKEN"); t != "" {
		return map[string]string{"Authorization": "Bearer " + t}
	}
	return nil
}

// setPrice sets the list price of sku in KRW, as an operator does.
func setPrice(tb testing.TB, u urls, sku string, unitPrice int64) {
	tb.Helper()
	body := map[string]any{"unitPrice": unitPrice, "currency": "KRW"}
	if code, raw := call(tb, http.MethodPut, u.order+"/prices/"+sku, body, adminHeader(), nil); code != http.StatusOK {
		tb.Fatalf("PUT /prices/%s: %d %s", sku, code, raw)
	}
}

// pricedSKU is newSKU with a price: a SKU no other test uses, of available units at unitPrice.
func pricedSKU(tb testing.TB, u urls, available, unitPrice int64) string {
	tb.Helper()
	sku := newSKU(tb, u, available)
	setPrice(tb, u, sku, unitPrice)
	return sku
}

// placeOrder places an order of items for a customer who was shown their prices: the operator
// sets each item's list price to its UnitPrice first.
func placeOrder(tb testing.TB, u urls, token string, items ...item) string {
	tb.Helper()
	for _, it := range items {
		setPrice(tb, u, it.SKU, it.UnitPrice)
	}
	var got struct {
		OrderID string `json:"orderId"`
		Status  string `json:"status"`
	}
	req := orderRequest{CustomerID: e2eCustomer, Currency: "KRW", PaymentToken: token, Items: items}
	code, raw := call(tb, http.MethodPost, u.order+"/orders", req, customerHeader(tb, e2eCustomer), &got)
	if code != http.StatusAccepted || got.Status != "PENDING" || got.OrderID == "" {
		tb.Fatalf("POST /orders: %d %s", code, raw)
	}
	return got.OrderID
}

// orderEnding places an order and waits until it ends with status.
func orderEnding(tb testing.TB, u urls, token, status string, items ...item) string {
	tb.Helper()
	id := placeOrder(tb, u, token, items...)
	if o := waitTerminal(tb, u, id, sagaTimeout); o.Status != status {
		tb.Fatalf("order ended %s/%s, want %s", o.Status, o.Reason, status)
	}
	return id
}

// get reads url's JSON answer into a new T as the tests' customer (e2eCustomer), failing tb unless
// it is 200.
func get[T any](tb testing.TB, url string) T {
	tb.Helper()
	return getAs[T](tb, url, customerHeader(tb, e2eCustomer))
}

// getAs reads url with headers (the login) and decodes its answer; anything but 200 fails tb.
func getAs[T any](tb testing.TB, url string, headers map[string]string) T {
	tb.Helper()
	var v T
	if code, raw := call(tb, http.MethodGet, url, nil, headers, &v); code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", url, code, raw)
	}
	return v
}

// getOrder reads order id as the operator, who may read any customer's order (the tests place
// orders as several customers; TestCustomersSeeOnlyTheirOrders checks what customers may read).
func getOrder(tb testing.TB, u urls, id string) order {
	tb.Helper()
	return getAs[order](tb, u.order+"/orders/"+id, adminHeader())
}

func getStock(tb testing.TB, u urls, sku string) stock {
	return get[stock](tb, u.inventory+"/stock/"+sku)
}

// charges reads the gateway's ledger of orderID, as the merchant (merchantHeader): the gateway
// lists charges to no one else.
func charges(tb testing.TB, u urls, orderID string) []charge {
	tb.Helper()
	return getAs[[]charge](tb, u.gateway+"/charges?orderId="+orderID, merchantHeader(tb))
}

// deadLetter is where a dead letter's record was, as GET /dead-letters lists it.
type deadLetter struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
}

// deadLetterCount counts the dead letters a service lists (its newest 1000).
func deadLetterCount(tb testing.TB, serviceURL string) int {
	tb.Helper()
	var dls []deadLetter
	if code, raw := call(tb, http.MethodGet, serviceURL+"/dead-letters?limit=1000", nil, adminHeader(), &dls); code != http.StatusOK {
		tb.Fatalf("GET %s/dead-letters: %d %.300s", serviceURL, code, raw)
	}
	return len(dls)
}

// consumedAsDeadLetters waits until group has consumed every one of msgs and checks that the
// service at url holds each as a dead letter under key.
func consumedAsDeadLetters(tb testing.TB, kc sarama.Client, group, url, key string, msgs []*sarama.ProducerMessage) {
	tb.Helper()
	for _, m := range msgs {
		waitConsumed(tb, kc, group, m.Topic, m.Partition, m.Offset, 60*time.Second)
	}
	var dls []deadLetter
	if code, raw := call(tb, http.MethodGet, url+"/dead-letters?limit=1000", nil, adminHeader(), &dls); code != http.StatusOK {
		tb.Fatalf("%s GET /dead-letters: %d %.300s", group, code, raw)
	}
	for _, m := range msgs {
		if !slices.ContainsFunc(dls, func(d deadLetter) bool {
			return d.Topic == m.Topic && d.Partition == m.Partition && d.Offset == m.Offset && d.Key == key
		}) {
			tb.Errorf("%s: no dead letter for %s[%d]@%d", group, m.Topic, m.Partition, m.Offset)
		}
	}
}

// waitTerminal waits until the order is COMPLETED or CANCELED and returns it.
func waitTerminal(tb testing.TB, u urls, id string, timeout time.Duration) order {
	tb.Helper()
	var o order
	eventually.Holds(tb, timeout, func() string {
		o = getOrder(tb, u, id)
		if o.Status == "COMPLETED" || o.Status == "CANCELED" {
			return ""
		}
		return fmt.Sprintf("order %s is still %s", id, o.Status)
	})
	return o
}

// waitStock waits until the SKU's figures are exactly want.
func waitStock(tb testing.TB, u urls, want stock, timeout time.Duration) {
	tb.Helper()
	eventually.Holds(tb, timeout, func() string {
		got := getStock(tb, u, want.SKU)
		if got != want {
			return fmt.Sprintf("stock %+v, want %+v", got, want)
		}
		return ""
	})
}
