package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/shipping"
	"outboxsaga.dev/shipping/postgres"
)

// store is a migrated test database and the repository on it.
type store struct {
	t  *testing.T
	db *sql.DB
	*postgres.Deliveries
}

func newStore(t *testing.T) store {
	db := pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateService(context.Background(), db, "shipping", postgres.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return store{t: t, db: db, Deliveries: postgres.NewDeliveries(db)}
}

// inTx runs fn in a transaction of its own and returns its error.
func (s store) inTx(fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx := context.Background()
	return msgpg.WithTx(ctx, s.db, func(tx *sql.Tx) error { return fn(ctx, tx) })
}

// create stores the delivery of a new order in status, reached at updatedAt.
func (s store) create(status shipping.Status, updatedAt time.Time) shipping.Delivery {
	s.t.Helper()
	d, _, err := shipping.Schedule(uuid.NewString(), uuid.NewString(), []shipping.Item{{SKU: "A100", Qty: 1, UnitPrice: 15000}},
		"4bf92f3577b34da6a3ce929d0e0e4736", updatedAt)
	if err != nil {
		s.t.Fatal(err)
	}
	d.Status = status
	if err := s.inTx(func(ctx context.Context, tx *sql.Tx) error {
		created, err := s.Create(ctx, tx, d)
		if err == nil && !created {
			err = errors.New("not created")
		}
		return err
	}); err != nil {
		s.t.Fatalf("Create() error = %v", err)
	}
	return d
}

func (s store) get(orderID string) shipping.Delivery {
	s.t.Helper()
	d, err := s.Get(context.Background(), orderID)
	if err != nil {
		s.t.Fatalf("Get(%s) error = %v", orderID, err)
	}
	return d
}

// One delivery per order: a second one for the same order is not created, whatever its id.
func TestCreateAndGet(t *testing.T) {
	s := newStore(t)
	d := s.create(shipping.StatusPreparing, time.Now())
	if got := s.get(d.OrderID); !reflect.DeepEqual(got, d) {
		t.Errorf("Get() = %+v, want %+v", got, d)
	}
	again := d
	again.ID, again.Status = uuid.NewString(), shipping.StatusShipped
	err := s.inTx(func(ctx context.Context, tx *sql.Tx) error {
		created, err := s.Create(ctx, tx, again)
		if err == nil && created {
			err = errors.New("created a second delivery of the order")
		}
		return err
	})
	if err != nil {
		t.Fatalf("Create() again: %v", err)
	}
	if got := s.get(d.OrderID); !reflect.DeepEqual(got, d) {
		t.Errorf("after a second Create() Get() = %+v, want the first %+v", got, d)
	}
	for _, id := range []string{uuid.NewString(), "nope", ""} {
		if _, err := s.Get(context.Background(), id); fault.Code(err) != fault.NotFound {
			t.Errorf("Get(%q) error = %v, want %s", id, err, fault.NotFound)
		}
	}
}

func TestUpdate(t *testing.T) {
	s := newStore(t)
	d := s.create(shipping.StatusPreparing, time.Now().Add(-time.Hour))
	now := time.Now()
	tests := []struct {
		name       string
		orderID    string
		fn         func(*shipping.Delivery) error
		wantCode   string
		wantStatus shipping.Status
	}{
		{name: "no delivery", orderID: uuid.NewString(), fn: func(*shipping.Delivery) error { return nil }, wantCode: fault.NotFound, wantStatus: shipping.StatusPreparing},
		{name: "fn fails: nothing written", orderID: d.OrderID, fn: func(d *shipping.Delivery) error {
			d.Status = shipping.StatusShipped
			return fault.Errorf(fault.Conflict, "no")
		}, wantCode: fault.Conflict, wantStatus: shipping.StatusPreparing},
		{name: "advanced", orderID: d.OrderID, fn: func(d *shipping.Delivery) error { _, err := d.Advance(now); return err }, wantStatus: shipping.StatusShipped},
		{name: "advanced again", orderID: d.OrderID, fn: func(d *shipping.Delivery) error { _, err := d.Advance(now); return err }, wantStatus: shipping.StatusDelivered},
		{name: "not past DELIVERED", orderID: d.OrderID, fn: func(d *shipping.Delivery) error { _, err := d.Advance(now); return err }, wantCode: fault.Conflict, wantStatus: shipping.StatusDelivered},
	}
	for _, tt := range tests {
		var got shipping.Delivery
		err := s.inTx(func(ctx context.Context, tx *sql.Tx) (err error) {
			got, err = s.Update(ctx, tx, tt.orderID, tt.fn)
			return err
		})
		if (err != nil || tt.wantCode != "") && fault.Code(err) != tt.wantCode {
			t.Fatalf("%s: Update() error = %v, want %q", tt.name, err, tt.wantCode)
		}
		stored := s.get(d.OrderID)
		if err == nil && !reflect.DeepEqual(got, stored) {
			t.Errorf("%s: Update() = %+v, stored %+v", tt.name, got, stored)
		}
		if stored.Status != tt.wantStatus {
			t.Errorf("%s: stored status %s, want %s", tt.name, stored.Status, tt.wantStatus)
		}
	}
}

// UpdateDue takes the deliveries on their way that reached their status by the cutoff, the
// longest waiting first, at most limit, and skips those another transaction holds.
func TestUpdateDue(t *testing.T) {
	s := newStore(t)
	now := time.Now()
	oldest := s.create(shipping.StatusShipped, now.Add(-3*time.Hour))
	held := s.create(shipping.StatusPreparing, now.Add(-2*time.Hour))
	old := s.create(shipping.StatusPreparing, now.Add(-time.Hour))
	s.create(shipping.StatusDelivered, now.Add(-4*time.Hour))
	s.create(shipping.StatusPreparing, now)

	holder, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.Exec(`SELECT 1 FROM deliveries WHERE order_id = $1 FOR UPDATE`, held.OrderID); err != nil {
		t.Fatal(err)
	}

	due := func(limit int) []string {
		var ids []string
		err := s.inTx(func(ctx context.Context, tx *sql.Tx) error {
			got, err := s.UpdateDue(ctx, tx, now.Add(-time.Minute), limit, func(d *shipping.Delivery) error {
				_, err := d.Advance(now)
				return err
			})
			for _, d := range got {
				ids = append(ids, d.OrderID)
			}
			return err
		})
		if err != nil {
			t.Fatalf("UpdateDue(%d) error = %v", limit, err)
		}
		return ids
	}
	for _, step := range []struct {
		limit int
		want  []string
	}{
		{limit: 1, want: []string{oldest.OrderID}},
		{limit: 10, want: []string{old.OrderID}}, // held is locked; the others were moved now or are not due
		{limit: 10, want: nil},
	} {
		if got := due(step.limit); !slices.Equal(got, step.want) {
			t.Fatalf("UpdateDue(%d) moved %v, want %v", step.limit, got, step.want)
		}
	}
	holder.Rollback()
	if got := due(10); !slices.Equal(got, []string{held.OrderID}) {
		t.Fatalf("UpdateDue() once released moved %v, want %v", got, held.OrderID)
	}
	for d, want := range map[string]shipping.Status{oldest.OrderID: shipping.StatusDelivered, old.OrderID: shipping.StatusShipped, held.OrderID: shipping.StatusShipped} {
		if got := s.get(d).Status; got != want {
			t.Errorf("delivery of %s is %s, want %s", d, got, want)
		}
	}
}

// The database itself keeps a delivery forward-only: one step at a time, its order, id and
// items fixed, one per order.
func TestDatabaseKeepsDeliveriesForwardOnly(t *testing.T) {
	tests := []struct {
		from    shipping.Status
		set     string
		wantErr bool
	}{
		{from: shipping.StatusPreparing, set: `status = 'SHIPPED'`},
		{from: shipping.StatusShipped, set: `status = 'DELIVERED'`},
		{from: shipping.StatusPreparing, set: `updated_at = now()`},
		{from: shipping.StatusPreparing, set: `status = 'DELIVERED'`, wantErr: true},
		{from: shipping.StatusShipped, set: `status = 'PREPARING'`, wantErr: true},
		{from: shipping.StatusDelivered, set: `status = 'SHIPPED'`, wantErr: true},
		{from: shipping.StatusPreparing, set: `status = 'LOST'`, wantErr: true},
		{from: shipping.StatusPreparing, set: `items = '[]'`, wantErr: true},
		{from: shipping.StatusPreparing, set: `delivery_id = gen_random_uuid()`, wantErr: true},
		{from: shipping.StatusPreparing, set: `trace_id = 'x'`, wantErr: true},
	}
	s := newStore(t)
	for _, tt := range tests {
		d := s.create(tt.from, time.Now())
		_, err := s.db.Exec(fmt.Sprintf(`UPDATE deliveries SET %s WHERE order_id = $1`, tt.set), d.OrderID)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: SET %s: error = %v, want error %v", tt.from, tt.set, err, tt.wantErr)
		}
	}
	d := s.create(shipping.StatusPreparing, time.Now())
	_, err := s.db.Exec(`INSERT INTO deliveries SELECT order_id, gen_random_uuid(), status, items, trace_id, created_at, updated_at
		FROM deliveries WHERE order_id = $1`, d.OrderID)
	if err == nil {
		t.Error("a second delivery of one order was inserted")
	}
}
