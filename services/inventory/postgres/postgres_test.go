package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
)

// openDB returns a migrated test database.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db := pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateService(context.Background(), db, "inventory", postgres.Migrations); err != nil {
		t.Fatalf("Migrate() error = %v", err)
	}
	return db
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := openDB(t)
	if err := msgpg.MigrateService(context.Background(), db, "inventory", postgres.Migrations); err != nil {
		t.Fatalf("second Migrate() error = %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations WHERE source = 'inventory'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("inventory migrations recorded = %d, want 1", n)
	}
}

func TestStock(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	store := postgres.NewStockLevels(db, pgtest.MustOutbox(t))

	if _, err := store.Get(ctx, "A100"); fault.Code(err) != fault.NotFound {
		t.Fatalf("Get(unknown) error = %v, want %s", err, fault.NotFound)
	}
	got, err := store.SetAvailable(ctx, "A100", 10)
	if err != nil {
		t.Fatalf("SetAvailable() error = %v", err)
	}
	if want := (inventory.Stock{SKU: "A100", Available: 10}); got != want {
		t.Errorf("SetAvailable() = %+v, want %+v", got, want)
	}

	mustExec(t, db, `UPDATE stock SET reserved = 2, sold = 3 WHERE sku = 'A100'`)
	got, err = store.SetAvailable(ctx, "A100", 7)
	if err != nil {
		t.Fatalf("SetAvailable() again error = %v", err)
	}
	want := inventory.Stock{SKU: "A100", Available: 7, Reserved: 2, Sold: 3}
	if got != want {
		t.Errorf("SetAvailable() again = %+v, want %+v (reserved and sold untouched)", got, want)
	}
	if got, err := store.Get(ctx, "A100"); err != nil || got != want {
		t.Errorf("Get() = %+v, %v; want %+v", got, err, want)
	}

	for _, tt := range []struct {
		name string
		sku  string
		n    int64
	}{
		{name: "negative", sku: "A100", n: -1},
		{name: "bad sku", sku: "A 100", n: 1},
	} {
		if _, err := store.SetAvailable(ctx, tt.sku, tt.n); fault.Code(err) != fault.Invalid {
			t.Errorf("SetAvailable(%s) error = %v, want %s", tt.name, err, fault.Invalid)
		}
	}
	if got, _ := store.Get(ctx, "A100"); got != want {
		t.Errorf("after rejected writes Get() = %+v, want %+v", got, want)
	}
}

func TestStockChecksRejectNegativeCounts(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `INSERT INTO stock (sku, available) VALUES ('A', 1)`)
	for _, q := range []string{
		`UPDATE stock SET available = -1`,
		`UPDATE stock SET reserved = -1`,
		`UPDATE stock SET sold = -1`,
	} {
		if _, err := db.Exec(q); err == nil {
			t.Errorf("%s: no error, want a check violation", q)
		}
	}
}

func TestCreateReservation(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	store := postgres.NewReservations(db)
	mustExec(t, db, `INSERT INTO stock (sku, available) VALUES ('A', 5), ('B', 1)`)
	order := inventory.Order{ID: "o1", Items: []inventory.Item{{SKU: "B", Qty: 1, UnitPrice: 10}, {SKU: "A", Qty: 2, UnitPrice: 20}}}

	var seen map[string]inventory.Stock
	reserve := func(_ inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
		seen = stock
		return inventory.Reserve(order, stock)
	}
	c, created := inTx(t, db, func(tx *sql.Tx) (inventory.Change, bool, error) {
		return store.Create(ctx, tx, "o1", []string{"A", "B", "C"}, reserve)
	})
	if !created || c.Outcome != inventory.OutcomeReserved {
		t.Fatalf("CreateReservation() = %v, created %v; want reserved", c.Outcome, created)
	}
	wantSeen := map[string]inventory.Stock{"A": {SKU: "A", Available: 5}, "B": {SKU: "B", Available: 1}}
	if !reflect.DeepEqual(seen, wantSeen) {
		t.Errorf("decide saw stock %v, want %v (unknown SKU C absent)", seen, wantSeen)
	}
	r, err := store.Get(ctx, "o1")
	if err != nil {
		t.Fatalf("Reservation() error = %v", err)
	}
	if want := (inventory.Reservation{OrderID: "o1", Status: inventory.StatusReserved, Items: order.Items}); !reflect.DeepEqual(r, want) {
		t.Errorf("Reservation() = %+v, want %+v", r, want)
	}
	assertStock(t, db, "A", 3, 2, 0)
	assertStock(t, db, "B", 0, 1, 0)

	called := false
	_, created = inTx(t, db, func(tx *sql.Tx) (inventory.Change, bool, error) {
		return store.Create(ctx, tx, "o1", []string{"A", "B"}, func(inventory.Reservation, map[string]inventory.Stock) (inventory.Change, error) {
			called = true
			return inventory.Change{}, nil
		})
	})
	if created || called {
		t.Errorf("second CreateReservation(): created %v, decide called %v; want neither", created, called)
	}
	assertStock(t, db, "A", 3, 2, 0)
}

func TestCreateReservationDecideErrorWritesNothing(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	store := postgres.NewReservations(db)
	err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		_, _, err := store.Create(ctx, tx, "o1", nil, func(inventory.Reservation, map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.Reserve(inventory.Order{ID: "o1"}, nil)
		})
		return err
	})
	if fault.Code(err) != fault.Invalid {
		t.Fatalf("error = %v, want %s", err, fault.Invalid)
	}
	if _, err := store.Get(ctx, "o1"); !errors.Is(err, postgres.ErrNoReservation) {
		t.Errorf("Reservation() error = %v, want ErrNoReservation", err)
	}
}

func TestUpdateReservation(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	store := postgres.NewReservations(db)
	mustExec(t, db, `INSERT INTO stock (sku, available, reserved) VALUES ('A', 1, 2)`)
	mustExec(t, db, `INSERT INTO reservations (order_id, status, items) VALUES
		('held', 'RESERVED', '[{"sku":"A","qty":2,"unitPrice":5}]'),
		('done', 'COMMITTED', '[{"sku":"A","qty":1,"unitPrice":5}]')`)

	_, err := updateInTx(ctx, db, store, "missing", inventory.Commit)
	if !errors.Is(err, postgres.ErrNoReservation) {
		t.Fatalf("UpdateReservation(missing) error = %v, want ErrNoReservation", err)
	}

	c, err := updateInTx(ctx, db, store, "done", inventory.Commit)
	if err != nil || c.Outcome != inventory.OutcomeIgnored {
		t.Fatalf("UpdateReservation(done) = %v, %v; want ignored", c.Outcome, err)
	}
	assertStock(t, db, "A", 1, 2, 0)

	c, err = updateInTx(ctx, db, store, "held", inventory.Commit)
	if err != nil || c.Outcome != inventory.OutcomeCommitted {
		t.Fatalf("UpdateReservation(held) = %v, %v; want committed", c.Outcome, err)
	}
	assertStock(t, db, "A", 1, 0, 2)
	r, err := store.Get(ctx, "held")
	if err != nil || r.Status != inventory.StatusCommitted {
		t.Errorf("Reservation(held) = %+v, %v; want COMMITTED", r, err)
	}
}

// What a transaction conflict raises is what the consumer retries until it passes
// (messaging/postgres.IsUnavailable); a wrong statement is not.
func TestConflictsAreRetried(t *testing.T) {
	db := openDB(t)
	_, err := db.Exec(`DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'deadlock_detected'; END $$`)
	if !msgpg.IsUnavailable(err) {
		t.Errorf("IsUnavailable(deadlock) = false, want true (err %v)", err)
	}
	_, err = db.Exec(`DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'serialization_failure'; END $$`)
	if !msgpg.IsUnavailable(err) {
		t.Errorf("IsUnavailable(serialization failure) = false, want true (err %v)", err)
	}
	_, err = db.Exec(`SELECT * FROM no_such_table`)
	if msgpg.IsUnavailable(err) {
		t.Errorf("IsUnavailable(undefined table) = true, want false")
	}
}

func updateInTx(ctx context.Context, db *sql.DB, store *postgres.Reservations, orderID string, decide postgres.Decide) (inventory.Change, error) {
	var c inventory.Change
	err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		var err error
		c, err = store.Update(ctx, tx, orderID, decide)
		return err
	})
	return c, err
}

func inTx(t *testing.T, db *sql.DB, fn func(*sql.Tx) (inventory.Change, bool, error)) (inventory.Change, bool) {
	t.Helper()
	var (
		c       inventory.Change
		created bool
	)
	err := msgpg.WithTx(context.Background(), db, func(tx *sql.Tx) error {
		var err error
		c, created, err = fn(tx)
		return err
	})
	if err != nil {
		t.Fatalf("transaction error = %v", err)
	}
	return c, created
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func assertStock(t *testing.T, db *sql.DB, sku string, available, reserved, sold int64) {
	t.Helper()
	got, err := postgres.NewStockLevels(db, pgtest.MustOutbox(t)).Get(context.Background(), sku)
	if err != nil {
		t.Fatalf("Get(%s) error = %v", sku, err)
	}
	want := inventory.Stock{SKU: sku, Available: available, Reserved: reserved, Sold: sold}
	if got != want {
		t.Errorf("stock = %+v, want %+v", got, want)
	}
}
