// Package postgres stores orders and their saga timelines in the order service's database
// (order_db). Writes run in the caller's transaction, so that a state change, its timeline rows
// and its outbox rows (messaging/postgres.InsertOutbox) commit together; reads use the pool.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	msgpg "outboxsaga.dev/messaging/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the shared messaging migrations (outbox, inbox, dead letters), then the order
// service's own.
func Migrate(ctx context.Context, db *sql.DB) error {
	if err := msgpg.MigrateMessaging(ctx, db); err != nil {
		return fmt.Errorf("migrate order db: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate order db: %w", err)
	}
	if err := msgpg.Migrate(ctx, db, "order", sub); err != nil {
		return fmt.Errorf("migrate order db: %w", err)
	}
	return nil
}
