package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	msghttp "outboxsaga.dev/messaging/httpapi"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/shipping"
	"outboxsaga.dev/shipping/app"
	"outboxsaga.dev/shipping/httpapi"
	"outboxsaga.dev/shipping/postgres"
)

// TestRoutes serves the shipping routes on the shared runtime's router, as the service does,
// over a database holding one PREPARING delivery, and walks it to DELIVERED as an operator.
func TestRoutes(t *testing.T) {
	ctx := context.Background()
	db := pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateService(ctx, db, "shipping", postgres.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	deliveries := postgres.NewDeliveries(db)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bearerOf := func(c string) string {
		tok, err := customer.Sign(key, c, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	u1, u2 := bearerOf("U1"), bearerOf("U2")
	steps := app.New(db, deliveries, pgtest.MustOutbox(t), app.NewMetrics(prometheus.NewRegistry()), zerolog.Nop(), time.Hour)
	r := msghttp.NewRouter(zerolog.Nop())
	httpapi.Routes(r, httpapi.Config{Deliveries: deliveries, Carrier: steps, AdminToken: "s3cret", Customers: customer.NewVerifier(pub), Log: zerolog.Nop()})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	id := uuid.NewString()
	d, _, err := shipping.Schedule(id, uuid.NewString(), []shipping.Item{{SKU: "A100", Qty: 2, UnitPrice: 15000}}, "4bf92f3577b34da6a3ce929d0e0e4736", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		if err := msgpg.RememberCustomer(ctx, tx, id, "U1"); err != nil {
			return err
		}
		_, err := deliveries.Create(ctx, tx, d)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A delivery of an order whose customer the service never heard of (made before it recorded
	// customers): no customer's, an operator's to read.
	older := uuid.NewString()
	d2, _, err := shipping.Schedule(older, uuid.NewString(), []shipping.Item{{SKU: "A100", Qty: 1, UnitPrice: 15000}}, "4bf92f3577b34da6a3ce929d0e0e4736", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error { _, err := deliveries.Create(ctx, tx, d2); return err }); err != nil {
		t.Fatal(err)
	}

	status, body := servicetest.Call(t, http.MethodGet, srv.URL+"/deliveries/"+id, "", map[string]string{"Authorization": u1})
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK {
		t.Fatalf("GET = %d %s (%v)", status, body, err)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"deliveryId", "items", "orderId", "status", "updatedAt"}; !slices.Equal(keys, want) {
		t.Errorf("GET answers the fields %v, want %v", keys, want)
	}

	path, advance, bearer := "/deliveries/"+id, "/deliveries/"+id+"/advance", "Bearer s3cret"
	servicetest.Expect(t, srv.URL,
		servicetest.Request{Method: http.MethodGet, Path: path, Want: http.StatusUnauthorized, WantBody: `"code":"unauthorized"`},
		servicetest.Request{Method: http.MethodGet, Path: path, Auth: "Bearer x.y.z", Want: http.StatusUnauthorized, WantBody: `"code":"unauthorized"`},
		servicetest.Request{Method: http.MethodGet, Path: path, Auth: u2, Want: http.StatusNotFound,
			WantBody: `{"code":"not_found","error":"order \"` + id + `\" has no delivery"}`},
		servicetest.Request{Method: http.MethodGet, Path: "/deliveries/" + older, Auth: u1, Want: http.StatusNotFound, WantBody: `"code":"not_found"`},
		servicetest.Request{Method: http.MethodGet, Path: "/deliveries/" + older, Auth: bearer, Want: http.StatusOK, WantBody: `"orderId":"` + older + `"`},
		servicetest.Request{Method: http.MethodGet, Path: path, Auth: bearer, Want: http.StatusOK, WantBody: `"status":"PREPARING"`},
		servicetest.Request{Method: http.MethodGet, Path: path, Auth: u1, Want: http.StatusOK,
			WantBody: `{"orderId":"` + id + `","deliveryId":"` + d.ID + `","status":"PREPARING","items":[{"sku":"A100","qty":2,"unitPrice":15000}],"updatedAt":"`},
		servicetest.Request{Method: http.MethodGet, Path: "/deliveries/" + uuid.NewString(), Auth: u1, Want: http.StatusNotFound, WantBody: `"code":"not_found"`},
		servicetest.Request{Method: http.MethodGet, Path: "/deliveries/not-an-order", Auth: u1, Want: http.StatusNotFound, WantBody: `"code":"not_found"`},
		servicetest.Request{Method: http.MethodPost, Path: advance, Want: http.StatusUnauthorized, WantBody: `"code":"unauthorized"`},
		servicetest.Request{Method: http.MethodPost, Path: advance, Auth: "Bearer nope", Want: http.StatusUnauthorized, WantBody: `"code":"unauthorized"`},
		servicetest.Request{Method: http.MethodPost, Path: advance, Auth: bearer, Want: http.StatusOK, WantBody: `"status":"SHIPPED"`},
		servicetest.Request{Method: http.MethodGet, Path: path, Auth: u1, Want: http.StatusOK, WantBody: `"status":"SHIPPED"`},
		servicetest.Request{Method: http.MethodPost, Path: advance, Auth: bearer, Body: `{"ignored":true}`, Want: http.StatusOK, WantBody: `"status":"DELIVERED"`},
		servicetest.Request{Method: http.MethodPost, Path: advance, Auth: bearer, Want: http.StatusConflict, WantBody: `"code":"already_delivered"`},
		servicetest.Request{Method: http.MethodPost, Path: "/deliveries/" + uuid.NewString() + "/advance", Auth: bearer, Want: http.StatusNotFound, WantBody: `"code":"not_found"`},
		servicetest.Request{Method: http.MethodGet, Path: path, Auth: u1, Want: http.StatusOK, WantBody: `"status":"DELIVERED"`},
		servicetest.Request{Method: http.MethodPut, Path: path, Auth: bearer, Want: http.StatusMethodNotAllowed, WantBody: `"code":"method_not_allowed"`},
		servicetest.Request{Method: http.MethodGet, Path: advance, Want: http.StatusMethodNotAllowed, WantBody: `"code":"method_not_allowed"`},
	)
}
