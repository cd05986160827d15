package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
)

// RebuildReport is what a rebuild found: how many orders the event store holds (N), and the ids of
// the orders whose projection differs from their fold (D = len(Differences)), found before any
// repair.
type RebuildReport struct {
	Orders      int
	Differences []uuid.UUID
	Swapped     bool // the rebuilt rows were put in place of the differing ones
}

// rebuildBatch is how many folded orders one INSERT writes.
const rebuildBatch = 1000

// Rebuild folds every order of the event store (and its delivery facts) into fresh tables,
// rebuilt_orders and rebuilt_order_items, with order.Apply (the function live writes use), and
// compares them with the live projection, orders and order_items: every column of every row.
// Without swap it reads one snapshot (REPEATABLE READ) and locks nothing: the service keeps
// reading and writing. With swap it first locks the projection and the event store against writes
// (reads go on; writers wait until it commits) and replaces each differing order's rows with the
// rebuilt ones (an order the event store does not know is deleted with its timeline). The fresh
// tables are dropped when it ends. db must connect as the tables' owner (CREATE, LOCK).
func Rebuild(ctx context.Context, db *sql.DB, up order.Upcaster, swap bool) (RebuildReport, error) {
	var rep RebuildReport
	for attempt := 1; ; attempt++ {
		var err error
		rep, err = rebuild(ctx, db, up, swap)
		if err == nil || attempt == 5 || !msgpg.IsUnavailable(err) {
			return rep, err
		}
		// A deadlock with a writer (40P01) while taking the locks: try again.
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

func rebuild(ctx context.Context, db *sql.DB, up order.Upcaster, swap bool) (RebuildReport, error) {
	var rep RebuildReport
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return rep, fmt.Errorf("rebuild: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	if swap {
		// Before the snapshot (the first query takes it): writers wait from here to the commit.
		if _, err := tx.ExecContext(ctx, `LOCK TABLE orders, order_items, order_events, order_timeline IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return rep, fmt.Errorf("rebuild: lock the projection: %w", err)
		}
	}
	for _, q := range []string{
		`DROP TABLE IF EXISTS rebuilt_order_items, rebuilt_orders`,
		`CREATE TABLE rebuilt_orders (LIKE orders INCLUDING DEFAULTS)`,
		`CREATE TABLE rebuilt_order_items (LIKE order_items INCLUDING DEFAULTS)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return rep, fmt.Errorf("rebuild: fresh tables: %w", err)
		}
	}
	facts, err := allDeliveryFacts(ctx, tx)
	if err != nil {
		return rep, err
	}
	if rep.Orders, err = foldAll(ctx, tx, up, facts); err != nil {
		return rep, err
	}
	if rep.Differences, err = differences(ctx, tx); err != nil {
		return rep, err
	}
	if swap && len(rep.Differences) > 0 {
		if err := putInPlace(ctx, tx, rep.Differences); err != nil {
			return rep, err
		}
		rep.Swapped = true
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE rebuilt_order_items, rebuilt_orders`); err != nil {
		return rep, fmt.Errorf("rebuild: drop the fresh tables: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return rep, fmt.Errorf("rebuild: commit: %w", err)
	}
	return rep, nil
}

// allDeliveryFacts reads every delivery fact of the timeline, by order, in timeline order.
func allDeliveryFacts(ctx context.Context, tx *sql.Tx) (map[uuid.UUID][]order.Recorded, error) {
	rows, err := tx.QueryContext(ctx, `SELECT order_id, event_id, event_type, recorded_at FROM order_timeline
		WHERE event_type = ANY($1) ORDER BY order_id, seq`, pq.Array(order.DeliveryEventTypes()))
	if err != nil {
		return nil, fmt.Errorf("rebuild: read delivery facts: %w", err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID][]order.Recorded)
	for rows.Next() {
		var (
			id uuid.UUID
			r  order.Recorded
		)
		if err := rows.Scan(&id, &r.EventID, &r.EventType, &r.OccurredAt); err != nil {
			return nil, fmt.Errorf("rebuild: read delivery facts: %w", err)
		}
		r.OccurredAt = r.OccurredAt.UTC()
		out[id] = append(out[id], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rebuild: read delivery facts: %w", err)
	}
	return out, nil
}

// foldAll folds every order of the event store into the fresh tables and returns how many.
func foldAll(ctx context.Context, tx *sql.Tx, up order.Upcaster, facts map[uuid.UUID][]order.Recorded) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT order_id, seq, payload, meta FROM order_events ORDER BY order_id, seq`)
	if err != nil {
		return 0, fmt.Errorf("rebuild: read the event store: %w", err)
	}
	// The rows are all read before the first INSERT: one connection serves the transaction.
	type stored struct {
		id  uuid.UUID
		rec order.Recorded
	}
	var all []stored
	for rows.Next() {
		var (
			id            uuid.UUID
			seq           int
			payload, meta []byte
		)
		if err := rows.Scan(&id, &seq, &payload, &meta); err != nil {
			rows.Close()
			return 0, fmt.Errorf("rebuild: read the event store: %w", err)
		}
		r, err := decodeRecorded(seq, payload, meta)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("rebuild: order %s: %w", id, err)
		}
		all = append(all, stored{id, r})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rebuild: read the event store: %w", err)
	}
	var (
		batch []order.Order
		n     int
	)
	for i := 0; i < len(all); {
		j := i
		var own []order.Recorded
		for ; j < len(all) && all[j].id == all[i].id; j++ {
			own = append(own, all[j].rec)
		}
		o, err := order.Fold(order.Merge(own, facts[all[i].id]), up)
		if err != nil {
			return 0, fmt.Errorf("rebuild: fold order %s: %w", all[i].id, err)
		}
		batch = append(batch, o)
		n++
		if len(batch) == rebuildBatch {
			if err := insertRebuilt(ctx, tx, batch); err != nil {
				return 0, err
			}
			batch = batch[:0]
		}
		i = j
	}
	if len(batch) > 0 {
		if err := insertRebuilt(ctx, tx, batch); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// insertRebuilt writes folded orders and their items into the fresh tables.
func insertRebuilt(ctx context.Context, tx *sql.Tx, orders []order.Order) error {
	type row struct {
		ID             uuid.UUID `json:"id"`
		CustomerID     string    `json:"customer_id"`
		Status         string    `json:"status"`
		Reason         string    `json:"reason"`
		Currency       string    `json:"currency"`
		Amount         int64     `json:"amount"`
		PaymentToken   string    `json:"payment_token"`
		TraceID        string    `json:"trace_id"`
		IdempotencyKey *string   `json:"idempotency_key"`
		RequestHash    string    `json:"request_hash"`
		CreatedAt      time.Time `json:"created_at"`
		UpdatedAt      time.Time `json:"updated_at"`
		DeadlineAt     time.Time `json:"deadline_at"`
		Delivery       *string   `json:"delivery"`
		Version        int       `json:"version"`
		Channel        string    `json:"channel"`
		Items          []itemRow `json:"items"`
	}
	rows := make([]row, len(orders))
	for i, o := range orders {
		r := row{ID: o.ID, CustomerID: o.CustomerID, Status: string(o.Status), Reason: string(o.Reason), Currency: o.Currency,
			Amount: o.Amount, PaymentToken: o.PaymentToken, TraceID: o.TraceID, RequestHash: o.RequestHash,
			CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, DeadlineAt: o.DeadlineAt, Version: o.Version, Channel: string(o.Channel)}
		if o.IdempotencyKey != "" {
			k := o.IdempotencyKey
			r.IdempotencyKey = &k
		}
		if o.Delivery != order.DeliveryNone {
			d := string(o.Delivery)
			r.Delivery = &d
		}
		for line, it := range o.Items {
			r.Items = append(r.Items, itemRow{Line: line, SKU: it.SKU, Qty: it.Qty, UnitPrice: it.UnitPrice})
		}
		rows[i] = r
	}
	doc, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("rebuild: encode folded orders: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rebuilt_orders (id, customer_id, status, reason, currency, amount, payment_token,
			trace_id, idempotency_key, request_hash, created_at, updated_at, deadline_at, delivery, version, channel)
		SELECT id, customer_id, status, reason, currency, amount, payment_token, trace_id, idempotency_key, request_hash,
			created_at, updated_at, deadline_at, delivery, version, channel
		FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, customer_id text, status text, reason text, currency text, amount bigint,
			payment_token text, trace_id text, idempotency_key text, request_hash text, created_at timestamptz,
			updated_at timestamptz, deadline_at timestamptz, delivery text, version int, channel text)`, string(doc)); err != nil {
		return fmt.Errorf("rebuild: write folded orders: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rebuilt_order_items (order_id, line, sku, qty, unit_price)
		SELECT r.id, i.line, i.sku, i.qty, i.unit_price
		FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, items jsonb)
		CROSS JOIN LATERAL jsonb_to_recordset(r.items) AS i(line int, sku text, qty bigint, unit_price bigint)`, string(doc)); err != nil {
		return fmt.Errorf("rebuild: write folded items: %w", err)
	}
	return nil
}

// itemRow is one folded order line as insertRebuilt sends it.
type itemRow struct {
	Line      int    `json:"line"`
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unit_price"`
}

// projectionColumns are the columns of orders that the fold makes: all of them.
const projectionColumns = `id, customer_id, status, reason, currency, amount, payment_token, trace_id, idempotency_key,
	request_hash, created_at, updated_at, deadline_at, delivery, version, channel`

// differences returns the ids of the orders whose live rows (orders, order_items) are not exactly
// the rebuilt ones, a missing or extra row included, in id order.
func differences(ctx context.Context, tx *sql.Tx) ([]uuid.UUID, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT id FROM (
			(SELECT `+projectionColumns+` FROM orders EXCEPT SELECT `+projectionColumns+` FROM rebuilt_orders)
			UNION ALL
			(SELECT `+projectionColumns+` FROM rebuilt_orders EXCEPT SELECT `+projectionColumns+` FROM orders)
		) o
		UNION
		SELECT order_id FROM (
			(SELECT * FROM order_items EXCEPT SELECT * FROM rebuilt_order_items)
			UNION ALL
			(SELECT * FROM rebuilt_order_items EXCEPT SELECT * FROM order_items)
		) i
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("rebuild: compare: %w", err)
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("rebuild: compare: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rebuild: compare: %w", err)
	}
	return out, nil
}

// putInPlace replaces the live rows of orders ids with the rebuilt ones.
func putInPlace(ctx context.Context, tx *sql.Tx, ids []uuid.UUID) error {
	arr := pq.Array(uuidStrings(ids))
	for _, q := range []string{
		`DELETE FROM order_items WHERE order_id = ANY($1::uuid[])`,
		// An order the event store does not know has no place in the projection.
		`DELETE FROM order_timeline t WHERE t.order_id = ANY($1::uuid[])
			AND NOT EXISTS (SELECT 1 FROM rebuilt_orders r WHERE r.id = t.order_id)`,
		`DELETE FROM orders o WHERE o.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM rebuilt_orders r WHERE r.id = o.id)`,
		`INSERT INTO orders (` + projectionColumns + `)
			SELECT ` + projectionColumns + ` FROM rebuilt_orders WHERE id = ANY($1::uuid[])
			ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
				reason = EXCLUDED.reason, currency = EXCLUDED.currency, amount = EXCLUDED.amount,
				payment_token = EXCLUDED.payment_token, trace_id = EXCLUDED.trace_id,
				idempotency_key = EXCLUDED.idempotency_key, request_hash = EXCLUDED.request_hash,
				created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, deadline_at = EXCLUDED.deadline_at,
				delivery = EXCLUDED.delivery, version = EXCLUDED.version, channel = EXCLUDED.channel`,
		`INSERT INTO order_items SELECT * FROM rebuilt_order_items WHERE order_id = ANY($1::uuid[])`,
	} {
		if _, err := tx.ExecContext(ctx, q, arr); err != nil {
			return fmt.Errorf("rebuild: put the rebuilt rows in place: %w", err)
		}
	}
	return nil
}

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
