// Package app holds the catalog service's use cases, which its saga steps call: record that a
// SKU is sold out or back (StockDepleted, StockReplenished) and count a completed order's sales
// (OrderCompleted). Each runs in the caller's transaction (the step's, with its inbox row) and
// returns what to report once committed. The domain (package catalog) decides; the repository
// stores.
package app

import (
	"context"
	"database/sql"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/catalog"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// Store is where the use cases keep the read models, in the caller's transaction;
// *postgres.Catalog implements it.
type Store interface {
	SetSoldOut(ctx context.Context, tx *sql.Tx, sku string, soldOut bool, at time.Time) (bool, error)
	CountOrder(ctx context.Context, tx *sql.Tx, orderID, day string, completedAt time.Time, sales []catalog.Sale) (bool, error)
}

// App is the catalog service's use cases.
type App struct {
	store Store
	zone  *time.Location
}

// New returns the use cases over store, counting each completed order on its day in zone (the
// ranking's, RANKING_TZ).
func New(store Store, zone *time.Location) *App { return &App{store: store, zone: zone} }

// StockChanged records that sku was sold out (soldOut) or came back at at, the event's
// occurredAt. An event older than what the catalog knows changes nothing.
func (a *App) StockChanged(ctx context.Context, tx *sql.Tx, sku string, soldOut bool, at time.Time) (msgpg.Result, error) {
	applied, err := a.store.SetSoldOut(ctx, tx, sku, soldOut, at)
	if err != nil {
		return msgpg.Result{}, err
	}
	return msgpg.Result{Done: func(log *zerolog.Logger) {
		log.Info().Str("sku", sku).Bool("soldOut", soldOut).Bool("applied", applied).Msg("product availability recorded")
	}}, nil
}

// OrderCompleted counts a completed order's units per SKU, on the day it completed (completedAt,
// OrderCompleted's occurredAt, in the ranking's zone), once: an order counted before, under any
// event id, changes nothing. Items the domain refuses are a fault.Invalid (poison).
func (a *App) OrderCompleted(ctx context.Context, tx *sql.Tx, orderID string, items []catalog.Item, completedAt time.Time) (msgpg.Result, error) {
	sales, err := catalog.Sales(items)
	if err != nil {
		return msgpg.Result{}, err
	}
	day := catalog.Day(completedAt, a.zone)
	counted, err := a.store.CountOrder(ctx, tx, orderID, day, completedAt, sales)
	if err != nil {
		return msgpg.Result{}, err
	}
	return msgpg.Result{Done: func(log *zerolog.Logger) {
		log.Info().Str("day", day).Int("skus", len(sales)).Bool("counted", counted).Msg("completed order counted")
	}}, nil
}
