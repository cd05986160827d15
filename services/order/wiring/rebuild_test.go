package wiring_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"testing"

	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/wiring"
)

// TestRebuildCommand: `order rebuild` ends with the line DESIGN fixes, exit status by
// ErrDifferences; -swap repairs what differed.
func TestRebuildCommand(t *testing.T) {
	db, url := pgtest.MustOpenTestDBURL(t)
	ctx := context.Background()
	if err := msgpg.MigrateService(ctx, db, "order", postgres.Migrations); err != nil {
		t.Fatal(err)
	}
	var cfg wiring.Config
	cfg.DatabaseURL = url
	last := regexp.MustCompile(`(?m)\Aorder: took \S+\norder: rebuilt 0 orders: 0 differences\n\z`)
	var out bytes.Buffer
	if err := wiring.Rebuild(ctx, cfg, nil, &out); err != nil || !last.MatchString(out.String()) {
		t.Fatalf("rebuild of an empty store: %v\n%s", err, out.String())
	}
	// An order in the projection that the store does not know.
	if _, err := db.Exec(`INSERT INTO orders (id, customer_id, status, currency, amount, payment_token, trace_id, request_hash,
		created_at, updated_at, deadline_at) VALUES (gen_random_uuid(), 'U1', 'PENDING', 'KRW', 1, 't', 'x', 'h', now(), now(), now())`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"-swap"}} {
		out.Reset()
		err := wiring.Rebuild(ctx, cfg, args, &out)
		if !errors.Is(err, wiring.ErrDifferences) || !regexp.MustCompile(`order: rebuilt 0 orders: 1 differences\n\z`).MatchString(out.String()) {
			t.Fatalf("rebuild %v: %v\n%s", args, err, out.String())
		}
	}
	out.Reset()
	if err := wiring.Rebuild(ctx, cfg, nil, &out); err != nil {
		t.Fatalf("rebuild after -swap: %v\n%s", err, out.String())
	}
}
