package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/postgres"
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db := pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateService(context.Background(), db, "payment", postgres.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestMigrateTwice(t *testing.T) {
	db := openDB(t)
	if err := msgpg.MigrateService(context.Background(), db, "payment", postgres.Migrations); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	files, err := fs.Glob(postgres.Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations WHERE source = 'payment'`).Scan(&n); err != nil || n != len(files) {
		t.Fatalf("payment migrations recorded: %d, %v; want %d", n, err, len(files))
	}
}

// TestCustomers: an order's customer is recorded once and never changes; an order never
// recorded has none.
func TestCustomers(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	repo := postgres.NewPayments(db)
	for _, c := range []string{"U1", "U2"} {
		err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error { return msgpg.RememberCustomer(ctx, tx, "o1", c) })
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, orderID, want string
	}{
		{name: "recorded first wins", orderID: "o1", want: "U1"},
		{name: "never recorded", orderID: "o2", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := repo.CustomerOf(ctx, tt.orderID); err != nil || got != tt.want {
				t.Fatalf("CustomerOf(%s) = %q, %v; want %q", tt.orderID, got, err, tt.want)
			}
		})
	}
}

func TestUpsertAndGet(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	repo := postgres.NewPayments(db)

	if _, err := repo.Get(ctx, "o1"); fault.Code(err) != fault.NotFound {
		t.Fatalf("Get(missing) = %v, want not_found", err)
	}

	fresh := payment.Payment{OrderID: "o1", Status: payment.StatusAuthorizing, Amount: 39000, Currency: "KRW", Token: "tok_ok"}
	tests := []struct {
		name   string
		decide postgres.Decide
		want   payment.Payment
	}{
		{
			name: "insert when absent",
			decide: func(found *payment.Payment) (*payment.Payment, error) {
				if found != nil {
					t.Errorf("found = %+v, want nil", found)
				}
				return &fresh, nil
			},
			want: fresh,
		},
		{
			name: "update when present",
			decide: func(found *payment.Payment) (*payment.Payment, error) {
				p := *found
				p.Status, p.PgTxnID, p.CancelRequested = payment.StatusAuthorized, "ch_1", true
				return &p, nil
			},
			want: payment.Payment{OrderID: "o1", Status: payment.StatusAuthorized, Amount: 39000, Currency: "KRW",
				Token: "tok_ok", PgTxnID: "ch_1", CancelRequested: true},
		},
		{
			name:   "nil stores nothing",
			decide: func(*payment.Payment) (*payment.Payment, error) { return nil, nil },
			want: payment.Payment{OrderID: "o1", Status: payment.StatusAuthorized, Amount: 39000, Currency: "KRW",
				Token: "tok_ok", PgTxnID: "ch_1", CancelRequested: true},
		},
		{
			name: "an error rolls back",
			decide: func(found *payment.Payment) (*payment.Payment, error) {
				return nil, errors.New("no")
			},
			want: payment.Payment{OrderID: "o1", Status: payment.StatusAuthorized, Amount: 39000, Currency: "KRW",
				Token: "tok_ok", PgTxnID: "ch_1", CancelRequested: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
				return repo.Upsert(ctx, tx, "o1", tt.decide)
			})
			got, err := repo.Get(ctx, "o1")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
				t.Errorf("timestamps not set: %+v", got)
			}
			got.CreatedAt, got.UpdatedAt = tt.want.CreatedAt, tt.want.UpdatedAt
			if got != tt.want {
				t.Fatalf("stored %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUpdateMissing(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		return postgres.NewPayments(db).Update(ctx, tx, "nope", func(*payment.Payment) error { return nil })
	})
	if fault.Code(err) != fault.NotFound {
		t.Fatalf("Update(missing) = %v, want not_found", err)
	}
}

// TestUpsertRace has two transactions decide on an absent payment at once: one inserts, the other
// waits for it and decides again on the row it wrote.
func TestUpsertRace(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	repo := postgres.NewPayments(db)

	first, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback()
	if err := repo.Upsert(ctx, first, "o1", func(*payment.Payment) (*payment.Payment, error) {
		return &payment.Payment{OrderID: "o1", Status: payment.StatusCanceled}, nil
	}); err != nil {
		t.Fatal(err)
	}

	var (
		wg      sync.WaitGroup
		seen    []*payment.Payment
		mu      sync.Mutex
		loseErr error
	)
	wg.Go(func() {
		loseErr = msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
			return repo.Upsert(ctx, tx, "o1", func(found *payment.Payment) (*payment.Payment, error) {
				mu.Lock()
				seen = append(seen, found)
				mu.Unlock()
				store, _ := payment.Admit(found, payment.Terms{OrderID: "o1", Amount: 1, Currency: "KRW", Token: "tok_ok"})
				return store, nil
			})
		})
	})
	waitForLockWaiter(t, db)
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if loseErr != nil {
		t.Fatalf("racing Upsert: %v", loseErr)
	}
	if len(seen) != 2 || seen[0] != nil || seen[1] == nil || seen[1].Status != payment.StatusCanceled {
		t.Fatalf("racing decide saw %v, want nil then the CANCELED row", seen)
	}
	got, _ := repo.Get(ctx, "o1")
	if got.Status != payment.StatusCanceled {
		t.Fatalf("status %s, want CANCELED (the cancel won)", got.Status)
	}
}

// waitForLockWaiter waits until a session of db's database waits for a lock.
func waitForLockWaiter(t *testing.T, db *sql.DB) {
	t.Helper()
	eventually.Holds(t, 5*time.Second, func() string {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return "no session waits for the lock"
		}
		return ""
	})
}

// TestIsProcessed: the inbox probe of the charging step (msgpg.IsProcessed) sees an event only
// once it is marked, on the payment service's schema.
func TestIsProcessed(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	m := &messaging.Message{Envelope: messaging.Envelope{EventID: "7b0e4c4e-8a4f-4d43-9a57-1f6b9c1a2b3c", EventType: "StockReserved"}, Record: messaging.Record{Topic: "inventory-events"}}
	probe := func() bool {
		var done bool
		if err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
			var err error
			done, err = msgpg.IsProcessed(ctx, tx, m)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return done
	}
	if probe() {
		t.Fatal("IsProcessed before marking = true")
	}
	if err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		_, err := msgpg.MarkProcessed(ctx, tx, m)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !probe() {
		t.Fatal("IsProcessed after marking = false")
	}
}
