// Package postgres keeps the notification service's record of what it sent (table notifications
// in notification_db) and its migrations. The inbox (processed_events) and the outbox of its dead
// letters are the shared messaging tables.
package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"outboxsaga.dev/notification"
)

// Record stores ns in the caller's transaction (the one that marks their event processed). A
// notification recorded before (same key) is left as it was.
func (s *SentNotifications) Record(ctx context.Context, tx *sql.Tx, ns []notification.Notification) error {
	for _, n := range ns {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notifications (key, event_id, event_type, kind, order_id, text)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING`,
			n.Key(), n.EventID, n.Event, n.Kind, n.OrderID, n.Text); err != nil {
			return fmt.Errorf("record notification %s: %w", n.Key(), err)
		}
	}
	return nil
}

// List returns the newest limit notifications sent about orderID ("" for any), oldest first.
func (s *SentNotifications) List(ctx context.Context, orderID string, limit int) ([]notification.Sent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, event_id, event_type, kind, order_id, text, sent_at FROM (
			SELECT * FROM notifications WHERE $1 = '' OR order_id = $1 ORDER BY seq DESC LIMIT $2
		) newest ORDER BY seq`, orderID, limit)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	out := []notification.Sent{}
	for rows.Next() {
		var n notification.Sent
		if err := rows.Scan(&n.Key, &n.EventID, &n.Event, &n.Kind, &n.OrderID, &n.Text, &n.SentAt); err != nil {
			return nil, fmt.Errorf("list notifications: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return out, nil
}

// SentNotifications is the record of the notifications the webhook accepted: what the service told whom,
// one row per Idempotency-Key (table notifications).
type SentNotifications struct{ db *sql.DB }

// NewSentNotifications returns the record kept in db.
func NewSentNotifications(db *sql.DB) *SentNotifications { return &SentNotifications{db: db} }
