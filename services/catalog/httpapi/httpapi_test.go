package httpapi_test

import (
	"context"
	"database/sql"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/catalog"
	"outboxsaga.dev/catalog/httpapi"
	"outboxsaga.dev/catalog/postgres"
	msghttp "outboxsaga.dev/messaging/httpapi"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/sagatest"
)

// newServer serves the routes over a fresh database holding: A sold out since t0 with 3 units
// sold on 2026-12-07 (Seoul), B with 3 units that day too, C never sold out nor sold.
func newServer(t *testing.T, now time.Time) *httptest.Server {
	t.Helper()
	db := sagatest.Open(t, "catalog", postgres.Migrations)
	store := postgres.NewCatalog(db)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := store.SetSoldOut(ctx, tx, "A", true, t0); err != nil {
			return err
		}
		if _, err := store.CountOrder(ctx, tx, "o1", "2026-12-07", t0, []catalog.Sale{{SKU: "A", Units: 3}, {SKU: "B", Units: 1}}); err != nil {
			return err
		}
		_, err := store.CountOrder(ctx, tx, "o2", "2026-12-07", t0, []catalog.Sale{{SKU: "B", Units: 2}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	r := msghttp.NewRouter(zerolog.Nop())
	httpapi.Routes(r, httpapi.Config{Catalog: store, Zone: seoul, Now: func() time.Time { return now }, Log: zerolog.Nop()})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func TestRoutes(t *testing.T) {
	// 16:00 UTC on the 6th is 01:00 on the 7th in Seoul: "today" is the 7th there.
	srv := newServer(t, time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC))
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string // the whole body, trimmed
	}{
		{"/products/A", 200, `{"sku":"A","soldOut":true,"soldOutAt":"2026-12-07T01:02:03Z","unitsSold":3}`},
		{"/products/B", 200, `{"sku":"B","soldOut":false,"soldOutAt":null,"unitsSold":3}`},
		{"/rankings/daily?date=2026-12-07", 200, `[{"rank":1,"sku":"A","units":3,"orders":1},{"rank":2,"sku":"B","units":3,"orders":2}]`},
		{"/rankings/daily?date=2026-12-07&limit=1", 200, `[{"rank":1,"sku":"A","units":3,"orders":1}]`},
		{"/rankings/daily", 200, `[{"rank":1,"sku":"A","units":3,"orders":1},{"rank":2,"sku":"B","units":3,"orders":2}]`},
		{"/rankings/daily?date=2026-12-08", 200, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := get(t, srv, tt.path)
			if status != tt.wantStatus || body != tt.wantBody {
				t.Errorf("GET %s = %d %s, want %d %s", tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestRoutesRefuse(t *testing.T) {
	srv := newServer(t, time.Now())
	tests := []struct {
		path       string
		wantStatus int
		wantInBody string
	}{
		{"/products/NEVER", 404, `"code":"not_found"`},
		{"/products/%00", 400, `sku must be`}, // PostgreSQL cannot compare NUL: it was a 500
		{"/products/A%2FB", 400, `sku must be`},
		{"/products/" + strings.Repeat("S", 65), 400, `sku must be`},
		{"/rankings/daily?date=2026-12-7", 400, `date must be`},
		{"/rankings/daily?date=", 400, `date must be`},
		{"/rankings/daily?date=2026-02-30", 400, `date must be`},
		{"/rankings/daily?date=2026-12-07&limit=0", 400, `limit must be`},
		{"/rankings/daily?date=2026-12-07&limit=1001", 400, `limit must be`},
		{"/rankings/daily?date=2026-12-07&limit=", 400, `limit must be`},
		{"/rankings/daily?limit=x", 400, `"code":"invalid"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := get(t, srv, tt.path)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantInBody) {
				t.Errorf("GET %s = %d %s, want %d with %s", tt.path, status, body, tt.wantStatus, tt.wantInBody)
			}
		})
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	res, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, strings.TrimSpace(string(b))
}
