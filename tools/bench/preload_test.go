package bench

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/tools/stackenv"
)

// TestPreloadWritesWhatTheServicesWrite fills a database per service, migrated with the
// service's own migrations, so a schema change that the preload's SQL no longer fits fails here;
// then it removes the synthetic rows and only them.
func TestPreloadWritesWhatTheServicesWrite(t *testing.T) {
	if os.Getenv("PG_ADMIN_URL") == "" {
		// The stack's superuser, from its secrets: `cd tools && go test ./...` as well as make test.
		t.Setenv("PG_ADMIN_URL", stackenv.Load().PGAdminURL)
	}
	ctx := context.Background()
	cfg := PreloadConfig{Sagas: 250, Batch: 100, End: time.Now().Add(-time.Hour).UTC().Truncate(time.Second), Span: 24 * time.Hour, dbs: map[string]string{}}
	dbs := map[string]*pgtestDB{}
	for _, p := range preloadDBs {
		db, url := pgtest.MustOpenTestDBURL(t)
		svc := p.service
		migrations := os.DirFS(filepath.Join("..", "..", "services", svc, "postgres"))
		if err := msgpg.MigrateService(ctx, db, svc, migrations); err != nil {
			t.Fatalf("migrate %s: %v", svc, err)
		}
		cfg.dbs[p.db] = url
		dbs[p.db] = &pgtestDB{t: t, db: db}
	}
	// A row of the service's own in each inbox and dead letters: the preload's removal leaves it.
	for name, d := range dbs {
		d.exec(`INSERT INTO processed_events (event_id, event_type, topic) VALUES ($1, 'OrderCreated', 'order-events')`, uuid.NewString())
		d.exec(`INSERT INTO dead_letters (service, topic, partition, "offset", error, attempts) VALUES ($1, 'order-events', 0, 7, 'real', 1)`, name)
	}

	want := map[[2]string]int{
		{"order_db", "orders"}: 250, {"order_db", "order_items"}: 250, {"order_db", "order_timeline"}: 8 * 250,
		{"order_db", "processed_events"}: 6*250 + 1, {"order_db", "dead_letters"}: 2 + 1,
		{"inventory_db", "reservations"}: 250, {"inventory_db", "processed_events"}: 2*250 + 1, {"inventory_db", "dead_letters"}: 3,
		{"payment_db", "payments"}: 250, {"payment_db", "processed_events"}: 250 + 1, {"payment_db", "dead_letters"}: 3,
		{"shipping_db", "deliveries"}: 250, {"shipping_db", "processed_events"}: 250 + 1, {"shipping_db", "dead_letters"}: 3,
		{"notification_db", "notifications"}: 2 * 250, {"notification_db", "processed_events"}: 2*250 + 1, {"notification_db", "dead_letters"}: 3,
	}
	// Twice: a second preload replaces the first.
	for range 2 {
		rows, err := Preload(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want) {
			t.Errorf("preload counted %d tables, want %d: %v", len(rows), len(want), rows)
		}
		for _, r := range rows {
			if w, ok := want[[2]string{r.DB, r.Table}]; !ok || int64(w) != r.Rows {
				t.Errorf("%s.%s: %d rows, want %d", r.DB, r.Table, r.Rows, w)
			}
		}
	}
	// The sagas start over the span before End, oldest first; their events follow within seconds.
	var oldest, newest time.Time
	dbs["order_db"].scan(`SELECT min(created_at), max(updated_at) FROM orders`, nil, &oldest, &newest)
	if d := oldest.Sub(cfg.End.Add(-cfg.Span)); d < 0 || d > cfg.Span/250+time.Second {
		t.Errorf("oldest order at %s, want one 250th of the span after %s", oldest, cfg.End.Add(-cfg.Span))
	}
	if d := newest.Sub(cfg.End); d < 0 || d > 5*time.Second {
		t.Errorf("newest update at %s, want within 5 s after %s", newest, cfg.End)
	}
	// The synthetic ids are one range and one per event.
	var distinct int
	dbs["order_db"].scan(`SELECT count(DISTINCT event_id) FROM order_timeline WHERE event_id BETWEEN $1 AND $2`, []any{syntheticLow, syntheticHigh}, &distinct)
	if distinct != 8*250 {
		t.Errorf("%d distinct synthetic timeline ids, want %d", distinct, 8*250)
	}

	if err := RemovePreload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	rows, err := PreloadRows(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		left := int64(0)
		if r.Table == "processed_events" || r.Table == "dead_letters" {
			left = 1 // the service's own
		}
		if r.Rows != left {
			t.Errorf("after the removal %s.%s has %d rows, want %d", r.DB, r.Table, r.Rows, left)
		}
	}
}

// pgtestDB is a test database with helpers that fail the test.
type pgtestDB struct {
	t  *testing.T
	db *sql.DB
}

func (d *pgtestDB) exec(query string, args ...any) {
	d.t.Helper()
	if _, err := d.db.Exec(query, args...); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
}

func (d *pgtestDB) scan(query string, args []any, dest ...any) {
	d.t.Helper()
	if err := d.db.QueryRow(query, args...).Scan(dest...); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
}
