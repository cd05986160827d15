package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the pg_advisory_xact_lock key that serializes migrations across processes.
const migrateLock = 7262011

// MigrateMessaging applies this package's own migrations (outbox, heartbeat, inbox, dead letters,
// publication, grants) under the source name "messaging".
func MigrateMessaging(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("messaging migrations: %w", err)
	}
	return Migrate(ctx, db, "messaging", sub)
}

// MigrateService applies the shared messaging migrations, then the service's own: the
// migrations/*.sql files of fsys (a service embeds them with //go:embed migrations/*.sql), under
// the source name service.
func MigrateService(ctx context.Context, db *sql.DB, service string, fsys fs.FS) error {
	if err := MigrateMessaging(ctx, db); err != nil {
		return fmt.Errorf("migrate %s db: %w", service, err)
	}
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil {
		return fmt.Errorf("migrate %s db: %w", service, err)
	}
	if err := Migrate(ctx, db, service, sub); err != nil {
		return fmt.Errorf("migrate %s db: %w", service, err)
	}
	return nil
}

// PendingService lists the migrations of MigrateService not applied to db yet (messaging's first,
// then the service's), as source/version; all of them when db has no schema_migrations table. It
// only reads, so a role that may not change the schema can ask.
func PendingService(ctx context.Context, db *sql.DB, service string, fsys fs.FS) ([]string, error) {
	own, err := fs.Sub(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("%s migrations: %w", service, err)
	}
	shared, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("messaging migrations: %w", err)
	}
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for schema_migrations: %w", err)
	}
	var pending []string
	for _, set := range []struct {
		source string
		fsys   fs.FS
	}{{"messaging", shared}, {service, own}} {
		names, err := fs.Glob(set.fsys, "*.sql")
		if err != nil {
			return nil, fmt.Errorf("list %s migrations: %w", set.source, err)
		}
		sort.Strings(names)
		for _, name := range names {
			done := false
			if exists {
				if err := db.QueryRowContext(ctx,
					`SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE source = $1 AND version = $2)`,
					set.source, name).Scan(&done); err != nil {
					return nil, fmt.Errorf("read schema_migrations: %w", err)
				}
			}
			if !done {
				pending = append(pending, set.source+"/"+name)
			}
		}
	}
	return pending, nil
}

// Migrate applies the *.sql files at the root of fsys in name order, each once, each in its own
// transaction, and records them in schema_migrations(source, version, applied_at) with version =
// the file name. source names the set (a service's own tables, "messaging", ...). Concurrent
// callers (several replicas starting at once) are serialized with pg_advisory_xact_lock.
func Migrate(ctx context.Context, db *sql.DB, source string, fsys fs.FS) error {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return fmt.Errorf("list %s migrations: %w", source, err)
	}
	sort.Strings(names)
	if err := WithTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			source     text NOT NULL,
			version    text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (source, version))`)
		return err
	}); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, name := range names {
		script, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("read migration %s/%s: %w", source, name, err)
		}
		if err := WithTx(ctx, db, func(tx *sql.Tx) error {
			return apply(ctx, tx, source, name, string(script))
		}); err != nil {
			return fmt.Errorf("migrate %s/%s: %w", source, name, err)
		}
	}
	return nil
}

// apply runs one migration unless it is recorded already.
func apply(ctx context.Context, tx *sql.Tx, source, version, script string) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	var done bool
	err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE source = $1 AND version = $2)`,
		source, version).Scan(&done)
	if err != nil || done {
		return err
	}
	if _, err := tx.ExecContext(ctx, script); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (source, version) VALUES ($1, $2)`, source, version)
	return err
}
