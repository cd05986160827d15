package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/order"
	"outboxsaga.dev/schemas"
)

// FuzzCreateRequest runs a POST /orders body through the handler's decoding and validation: it
// must never panic, a rejected body is a client error (4xx), and an accepted one yields an
// OrderCreated event that passes its schema (an accepted order must never become poison).
func FuzzCreateRequest(f *testing.F) {
	f.Add(`{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A100","qty":2,"unitPrice":15000}]}`)
	f.Add(`{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A","qty":1,"unitPrice":9223372036854775807},{"sku":"B","qty":2,"unitPrice":9223372036854775807}]}`)
	f.Add(`{"customerId":"U\u0000","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A","qty":1,"unitPrice":1}]}`)
	f.Add(`{"items":[{"qty":-1}]}`)
	f.Add(`[]`)
	v, err := schemas.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req createRequest
		err := msghttp.DecodeJSON(w, r, &req)
		if err == nil {
			_ = req.hash()
			var e messaging.Event
			var o order.Order
			// Every SKU priced at the price the client was shown (or 1), in the order's currency.
			d := req.draft()
			prices := map[string]order.Price{}
			for _, l := range d.Lines {
				p := order.Price{SKU: l.SKU, UnitPrice: 1, Currency: d.Currency}
				if l.UnitPrice != nil {
					p.UnitPrice = *l.UnitPrice
				}
				prices[l.SKU] = p
			}
			o, e, err = order.New(uuid.New(), d, prices, time.Now().UTC(), time.Minute)
			if err == nil {
				env, nerr := messaging.NewEnvelope(order.AggregateType, o.ID.String(), e.Type, order.CreatedVersion, e.Data, messaging.NewTraceparent())
				if nerr != nil {
					t.Fatalf("accepted order %q: envelope: %v", body, nerr)
				}
				raw, _ := json.Marshal(env)
				if verr := v.Validate(e.Type, order.CreatedVersion, raw); verr != nil {
					t.Fatalf("accepted order %q emits an event its schema rejects: %v", body, verr)
				}
				return
			}
		}
		if c := fault.Code(err); c != fault.Invalid && c != fault.TooLarge {
			t.Fatalf("body %q: error %v has code %q, want a client error", body, err, c)
		}
	})
}
