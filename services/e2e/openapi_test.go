package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"

	"outboxsaga.dev/schemas/openapi"
)

// contract checks real answers against the services' OpenAPI documents (schemas/openapi): the
// operation must be documented, the status listed for it, and the body valid for its schema.
type contract struct {
	routers map[string]routers.Router // by service
}

// newContract loads every document (linted as it loads) with its server set to where the
// service runs on this stack.
func newContract(tb testing.TB, u urls) *contract {
	tb.Helper()
	base := map[string]string{
		"order": u.order, "inventory": u.inventory, "payment": u.payment, "shipping": u.shipping,
		"notification": u.notification, "catalog": u.catalog, "gatewaysim": u.gateway, "webhooksink": u.sink,
	}
	c := &contract{routers: map[string]routers.Router{}}
	for _, svc := range openapi.Services {
		doc, err := openapi.Load(context.Background(), svc)
		if err != nil {
			tb.Fatal(err)
		}
		doc.Servers = openapi3.Servers{{URL: base[svc]}}
		r, err := legacy.NewRouter(doc)
		if err != nil {
			tb.Fatalf("router of %s.yaml: %v", svc, err)
		}
		c.routers[svc] = r
	}
	return c
}

// do sends a request to service (a JSON body unless nil), checks the answer against the
// service's document and returns its status and body.
func (c *contract) do(tb testing.TB, svc, method, url string, body any, headers map[string]string) (int, []byte) {
	tb.Helper()
	req, status, header, got := send(tb, method, url, body, headers)
	c.check(tb, svc, req, status, header, got)
	return status, got
}

// check validates one answer of service to req against its document.
func (c *contract) check(tb testing.TB, svc string, req *http.Request, status int, header http.Header, body []byte) {
	tb.Helper()
	route, params, err := c.routers[svc].FindRoute(req)
	if err != nil {
		tb.Errorf("%s %s: no operation of schemas/openapi/%s.yaml: %v", req.Method, req.URL.Path, svc, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		tb.Errorf("%s %s → %d %.300s\ndoes not match schemas/openapi/%s.yaml: %v", req.Method, req.URL.Path, status, body, svc, err)
	}
}

// TestResponsesMatchOpenAPI drives every documented operation the tests can reach without a
// fault (an order through its saga, the operator's and the customer's reads, errors of each
// kind) and checks every answer against the service's OpenAPI document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	u := stackURLs()
	c := newContract(t, u)
	admin, cust := adminHeader(), customerHeader(t, e2eCustomer)
	merchant := map[string]string{"Authorization": "Bearer " + os.Getenv("GATEWAY_MERCHANT_SECRET")}
	reader := map[string]string{"Authorization": "Bearer " + os.Getenv("WEBHOOKSINK_READ_TOKEN")}

	sku := "T-" + strings.ToUpper(uuid.NewString()[:8])
	c.do(t, "inventory", http.MethodPut, u.inventory+"/stock/"+sku, map[string]int64{"available": 5}, admin)
	c.do(t, "inventory", http.MethodGet, u.inventory+"/stock/"+sku, nil, nil)
	c.do(t, "inventory", http.MethodPut, u.inventory+"/stock/"+sku, map[string]int64{"available": 5}, nil) // 401
	c.do(t, "order", http.MethodPut, u.order+"/prices/"+sku, map[string]any{"unitPrice": 1000, "currency": "KRW"}, admin)
	c.do(t, "order", http.MethodGet, u.order+"/prices/"+sku, nil, nil)

	order := map[string]any{"currency": "KRW", "paymentToken": "tok_ok", "items": []map[string]any{{"sku": sku, "qty": 1}}}
	code, raw := c.do(t, "order", http.MethodPost, u.order+"/orders", order, cust)
	var created struct {
		OrderID string `json:"orderId"`
	}
	if code != http.StatusAccepted || json.Unmarshal(raw, &created) != nil {
		t.Fatalf("POST /orders: %d %s", code, raw)
	}
	c.do(t, "order", http.MethodPost, u.order+"/orders", order, nil)                                                 // 401
	c.do(t, "order", http.MethodPost, u.order+"/orders", map[string]any{"currency": "KRW"}, cust)                    // 400
	c.do(t, "order", http.MethodPost, u.order+"/orders", map[string]any{"currency": "KRW", "paymentToken": "tok_ok", // 422
		"items": []map[string]any{{"sku": "NOPRICE-" + sku, "qty": 1}}}, cust)
	// Whatever the end (the reads of a canceled order are documented too).
	o := waitTerminal(t, u, created.OrderID, sagaTimeout)
	t.Logf("order %s ended %s %s", created.OrderID, o.Status, o.Reason)
	id := created.OrderID
	for _, p := range []string{"", "/events", "/history"} {
		c.do(t, "order", http.MethodGet, u.order+"/orders/"+id+p, nil, cust)
	}
	c.do(t, "order", http.MethodGet, u.order+"/orders/"+id, nil, admin)
	c.do(t, "order", http.MethodGet, u.order+"/orders/"+id, nil, customerHeader(t, "U-someone-else")) // 404
	c.do(t, "payment", http.MethodGet, u.payment+"/payments/"+id, nil, cust)
	c.do(t, "payment", http.MethodGet, u.payment+"/payments/"+id, nil, nil) // 401
	c.do(t, "shipping", http.MethodGet, u.shipping+"/deliveries/"+id, nil, cust)
	c.do(t, "shipping", http.MethodGet, u.shipping+"/deliveries/no-such-order", nil, admin) // 404
	c.do(t, "gatewaysim", http.MethodGet, u.gateway+"/charges?orderId="+id, nil, merchant)
	c.do(t, "notification", http.MethodGet, u.notification+"/notifications?orderId="+id, nil, admin)
	c.do(t, "notification", http.MethodPost, u.notification+"/alertmanager", map[string]any{"status": "firing"}, admin) // 400
	c.do(t, "webhooksink", http.MethodGet, u.sink+"/received?orderId="+id, nil, reader)
	c.do(t, "webhooksink", http.MethodGet, u.sink+"/received", nil, nil) // 401

	for svc, base := range map[string]string{"order": u.order, "inventory": u.inventory, "payment": u.payment,
		"shipping": u.shipping, "notification": u.notification, "gatewaysim": u.gateway, "webhooksink": u.sink} {
		c.do(t, svc, http.MethodGet, base+"/healthz", nil, nil)
		c.do(t, svc, http.MethodGet, base+"/metrics", nil, nil)
		if svc != "gatewaysim" && svc != "webhooksink" {
			c.do(t, svc, http.MethodGet, base+"/readyz", nil, nil)
			c.do(t, svc, http.MethodGet, base+"/dead-letters?limit=3", nil, admin)
		}
	}
}
