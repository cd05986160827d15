package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/google/uuid"

	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/postgres"
)

// TestSent: a notification is recorded once whatever the repeats; List gives the newest of an
// order (or of all), oldest first.
func TestSent(t *testing.T) {
	e1, e2 := uuid.NewString(), uuid.NewString()
	batches := [][]notification.Notification{
		{{Text: "a", Kind: notification.KindCustomer, Event: "OrderCanceled", OrderID: "o1", EventID: e1},
			{Text: "b", Kind: notification.KindAlert, Event: "OrderCanceled", OrderID: "o1", EventID: e1}},
		{{Text: "a again", Kind: notification.KindCustomer, Event: "OrderCanceled", OrderID: "o1", EventID: e1}},
		{{Text: "c", Kind: notification.KindAlert, Event: "DeadLettered", OrderID: "o2", EventID: e2}},
	}
	ctx, db := context.Background(), pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateService(ctx, db, notification.Service, postgres.Migrations); err != nil {
		t.Fatal(err)
	}
	sent := postgres.NewSentNotifications(db)
	for _, ns := range batches {
		if err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error { return sent.Record(ctx, tx, ns) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		orderID string
		limit   int
		want    string
	}{{"o1", 10, "ab"}, {"o1", 1, "b"}, {"", 10, "abc"}, {"", 2, "bc"}, {"o3", 10, ""}} {
		got, err := sent.List(ctx, tc.orderID, tc.limit)
		texts := ""
		for _, n := range got {
			texts += n.Text
			if n.Key != n.Notification.Key() || n.SentAt.IsZero() {
				t.Errorf("List(%q) gave %+v", tc.orderID, n)
			}
		}
		if err != nil || texts != tc.want {
			t.Errorf("List(%q, %d) = %q, %v; want %q", tc.orderID, tc.limit, texts, err, tc.want)
		}
	}
}
