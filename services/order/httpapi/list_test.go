package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/order/httpapi"
	"outboxsaga.dev/order/postgres"
)

// listed is the answer of GET /orders as a client reads it.
type listed struct {
	Orders []struct {
		OrderID, Status, Reason, Waiting, TraceID string
		Delivery                                  *string
		CreatedAt                                 time.Time
	} `json:"orders"`
	Next string `json:"next"`
}

// seedOrder writes an order's projection row (and, for stockReserved, its StockReserved timeline
// entry) placed age before now.
func seedOrder(t *testing.T, db *sql.DB, now time.Time, age time.Duration, status, reason, delivery string, stockReserved bool) uuid.UUID {
	t.Helper()
	id := uuid.New()
	at := now.Add(-age)
	var d sql.NullString
	if delivery != "" {
		d = sql.NullString{String: delivery, Valid: true}
	}
	if _, err := db.Exec(`INSERT INTO orders (id, customer_id, status, reason, currency, amount, payment_token, trace_id,
		request_hash, created_at, updated_at, deadline_at, delivery) VALUES ($1, 'U1', $2, $3, 'KRW', 1000, '', $7,
		'', $4, $4, $5, $6)`, id, status, reason, at, at.Add(30*time.Second), d, "trace-"+id.String()); err != nil {
		t.Fatalf("seed order: %v", err)
	}
	if stockReserved {
		if _, err := db.Exec(`INSERT INTO order_timeline (event_id, order_id, event_type, source, occurred_at, data)
			VALUES ($1, $2, 'StockReserved', 'inventory-events', $3, '{}')`, uuid.New(), id, at); err != nil {
			t.Fatalf("seed timeline: %v", err)
		}
	}
	return id
}

func TestListOrders(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateService(context.Background(), db, "order", postgres.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	inventory := seedOrder(t, db, now, 5*time.Minute, "PENDING", "", "", false)
	payment := seedOrder(t, db, now, 4*time.Minute, "PENDING", "", "", true)
	shipping := seedOrder(t, db, now, 3*time.Minute, "COMPLETED", "", "SHIPPED", true)
	delivered := seedOrder(t, db, now, 2*time.Minute, "COMPLETED", "", "DELIVERED", true)
	canceled := seedOrder(t, db, now, time.Minute, "CANCELED", "PAYMENT_FAILED", "", true)
	fresh := seedOrder(t, db, now, time.Second, "PENDING", "", "", false)

	r := chi.NewRouter()
	httpapi.ListRoutes(r, httpapi.ListConfig{Orders: postgres.NewOrderList(db), AdminToken: "admin", Log: zerolog.Nop(),
		Now: func() time.Time { return now }})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	get := func(t *testing.T, query, token string) (int, listed) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l listed
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
				t.Fatalf("decode: %v", err)
			}
		}
		return resp.StatusCode, l
	}
	ids := func(l listed) []string {
		var out []string
		for _, o := range l.Orders {
			out = append(out, o.OrderID)
		}
		return out
	}
	want := func(ids ...uuid.UUID) []string {
		var out []string
		for _, id := range ids {
			out = append(out, id.String())
		}
		return out
	}
	same := func(t *testing.T, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("orders %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("orders %v, want %v", got, want)
			}
		}
	}

	t.Run("operators only", func(t *testing.T) {
		for _, token := range []string{"", "customer"} {
			if code, _ := get(t, "", token); code != http.StatusUnauthorized && code != http.StatusForbidden {
				t.Errorf("token %q: status %d, want 401 or 403", token, code)
			}
		}
	})
	t.Run("newest first with the step each waits at", func(t *testing.T) {
		code, l := get(t, "", "admin")
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		same(t, ids(l), want(fresh, canceled, delivered, shipping, payment, inventory))
		wantWaiting := []string{"inventory", "", "", "shipping", "payment", "inventory"}
		for i, o := range l.Orders {
			if o.Waiting != wantWaiting[i] {
				t.Errorf("order %d waits at %q, want %q", i, o.Waiting, wantWaiting[i])
			}
		}
		if l.Next != "" {
			t.Errorf("next %q on the only page", l.Next)
		}
	})
	t.Run("filters", func(t *testing.T) {
		for query, w := range map[string][]string{
			"?status=PENDING":                   want(fresh, payment, inventory),
			"?status=PENDING&olderThan=30s":     want(payment, inventory),
			"?status=PENDING&olderThan=270":     want(inventory),
			"?reason=PAYMENT_FAILED":            want(canceled),
			"?waiting=payment":                  want(payment),
			"?waiting=inventory&olderThan=1m0s": want(inventory),
			"?waiting=shipping":                 want(shipping),
			"?id=" + payment.String():           want(payment),
		} {
			code, l := get(t, query, "admin")
			if code != http.StatusOK {
				t.Fatalf("%s: status %d", query, code)
			}
			same(t, ids(l), w)
		}
	})
	t.Run("pages follow the cursor", func(t *testing.T) {
		var got []string
		query := "?limit=4"
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatal("the cursor never ends")
			}
			code, l := get(t, query, "admin")
			if code != http.StatusOK {
				t.Fatalf("%s: status %d", query, code)
			}
			got = append(got, ids(l)...)
			if l.Next == "" {
				break
			}
			query = "?limit=4&before=" + l.Next
		}
		same(t, got, want(fresh, canceled, delivered, shipping, payment, inventory))
	})
	t.Run("bad filters answer 400", func(t *testing.T) {
		for _, query := range []string{"?status=LOST", "?reason=BORED", "?waiting=moon", "?olderThan=soon",
			"?limit=0", "?limit=501", "?before=xyz", "?id=42"} {
			if code, _ := get(t, query, "admin"); code != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", query, code)
			}
		}
	})
}
