package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"outboxsaga.dev/order"
)

// OrderList lists the orders for operators (GET /orders): newest first, filtered, paged by a
// keyset cursor, each with the step it waits at.
type OrderList struct{ db *sql.DB }

// NewOrderList returns the list of the orders in db.
func NewOrderList(db *sql.DB) *OrderList { return &OrderList{db: db} }

// stockReservedSQL holds when the inventory reserved order o's stock.
const stockReservedSQL = `EXISTS (SELECT 1 FROM order_timeline t WHERE t.order_id = o.id AND t.event_type = 'StockReserved')`

// waitingSQL is the step an order waits at (order.Step), from its status, its delivery and
// whether the inventory reserved its stock; waitingWhere is each step's condition, written so
// that the status narrows the rows first.
const waitingSQL = `CASE
	WHEN o.status = 'PENDING' AND ` + stockReservedSQL + ` THEN 'payment'
	WHEN o.status = 'PENDING' THEN 'inventory'
	WHEN o.status = 'COMPLETED' AND coalesce(o.delivery, '') <> 'DELIVERED' THEN 'shipping'
	ELSE '' END`

var waitingWhere = map[order.Step]string{
	order.StepPayment:   `o.status = 'PENDING' AND ` + stockReservedSQL,
	order.StepInventory: `o.status = 'PENDING' AND NOT ` + stockReservedSQL,
	order.StepShipping:  `o.status = 'COMPLETED' AND coalesce(o.delivery, '') <> 'DELIVERED'`,
}

// List returns the page of orders f selects.
func (l *OrderList) List(ctx context.Context, f order.ListFilter) (order.ListPage, error) {
	if err := f.Validate(); err != nil {
		return order.ListPage{}, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = order.DefaultListLimit
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.ID != uuid.Nil {
		where = append(where, "o.id = "+arg(f.ID))
	}
	if f.Status != "" {
		where = append(where, "o.status = "+arg(string(f.Status)))
	}
	if f.Reason != "" {
		where = append(where, "o.reason = "+arg(string(f.Reason)))
	}
	if f.OlderThan > 0 {
		where = append(where, "o.created_at <= "+arg(f.Now.Add(-f.OlderThan)))
	}
	if f.Waiting != order.StepNone {
		where = append(where, "("+waitingWhere[f.Waiting]+")")
	}
	if !f.Before.IsZero() {
		where = append(where, fmt.Sprintf("(o.created_at, o.id) < (%s, %s)", arg(f.Before.CreatedAt), arg(f.Before.ID)))
	}
	// The page first, then the step of its orders only.
	q := `SELECT o.id, o.customer_id, o.status, o.reason, coalesce(o.delivery, ''), o.amount, o.currency, o.trace_id,
		` + waitingSQL + `, o.created_at, o.updated_at, o.deadline_at
		FROM (SELECT * FROM orders o`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY o.created_at DESC, o.id DESC LIMIT " + arg(limit+1) + ") o ORDER BY o.created_at DESC, o.id DESC"
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return order.ListPage{}, fmt.Errorf("list orders: %w", err)
	}
	defer rows.Close()
	var page order.ListPage
	for rows.Next() {
		var s order.Summary
		if err := rows.Scan(&s.ID, &s.CustomerID, &s.Status, &s.Reason, &s.Delivery, &s.Amount, &s.Currency, &s.TraceID,
			&s.Waiting, &s.CreatedAt, &s.UpdatedAt, &s.DeadlineAt); err != nil {
			return order.ListPage{}, fmt.Errorf("list orders: %w", err)
		}
		page.Orders = append(page.Orders, s)
	}
	if err := rows.Err(); err != nil {
		return order.ListPage{}, fmt.Errorf("list orders: %w", err)
	}
	if len(page.Orders) > limit {
		page.Orders = page.Orders[:limit]
		last := page.Orders[limit-1]
		page.Next = order.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}
