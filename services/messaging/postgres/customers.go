package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"outboxsaga.dev/messaging"
)

// The services that must answer a customer's read of an order they did not create (payment's
// GET /payments/{orderId}, shipping's GET /deliveries/{orderId}) learn whose order it is from
// OrderCreated, in a table order_customers(order_id primary key, customer_id) of their own
// migrations: the events that create their rows do not say.

// RememberCustomer records in tx that order orderID is customer's. Recording it again changes
// nothing: an order's customer never changes.
func RememberCustomer(ctx context.Context, tx *sql.Tx, orderID, customer string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO order_customers (order_id, customer_id) VALUES ($1, $2)
		ON CONFLICT (order_id) DO NOTHING`, orderID, customer)
	if err != nil {
		return fmt.Errorf("remember customer of order %s: %w", orderID, err)
	}
	return nil
}

// CustomerOf returns the customer of order orderID, or "" when the service has not heard of it.
func CustomerOf(ctx context.Context, db *sql.DB, orderID string) (string, error) {
	var c string
	err := db.QueryRowContext(ctx, `SELECT customer_id FROM order_customers WHERE order_id = $1`, orderID).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("customer of order %s: %w", orderID, err)
	}
	return c, nil
}

// RememberCustomers is the saga step of OrderCreated for such a service: in one transaction with
// the inbox, it records whose order it is (RememberCustomer). It changes nothing else.
func RememberCustomers(db *sql.DB) messaging.Handler {
	type created struct {
		OrderID    string `json:"orderId"`
		CustomerID string `json:"customerId"`
	}
	return Step(&Saga{DB: db}, func(ctx context.Context, tx *sql.Tx, _ *messaging.Message, d created) (Result, error) {
		return Result{}, RememberCustomer(ctx, tx, d.OrderID, d.CustomerID)
	})
}
