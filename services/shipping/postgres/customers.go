package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"outboxsaga.dev/shipping"
)

// RememberCustomer records that order orderID is customer's (OrderCreated says so). Recording it
// again changes nothing: an order's customer never changes.
func RememberCustomer(ctx context.Context, tx *sql.Tx, orderID, customer string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO order_customers (order_id, customer_id) VALUES ($1, $2)
		ON CONFLICT (order_id) DO NOTHING`, orderID, customer)
	if err != nil {
		return fmt.Errorf("remember customer of order %s: %w", orderID, err)
	}
	return nil
}

// CustomerOf returns the customer of order orderID, or "" when the service has not heard of it
// (or orderID is no order id).
func (s *Deliveries) CustomerOf(ctx context.Context, orderID string) (string, error) {
	if shipping.ValidateOrderID(orderID) != nil {
		return "", nil
	}
	var c string
	err := s.db.QueryRowContext(ctx, `SELECT customer_id FROM order_customers WHERE order_id = $1`, orderID).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("customer of order %s: %w", orderID, err)
	}
	return c, nil
}
