// Package postgres reads PostgreSQL's replication slots (pg_replication_slots) for the console,
// through a read-only login role: the view and the WAL functions it uses are open to any role,
// so the role needs no grant at all.
package postgres

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/lib/pq" // the driver of database/sql's "postgres"

	"outboxsaga.dev/console"
)

// Slots reads the replication slots.
type Slots struct{ db *sql.DB }

// Open connects to url (a read-only role's) with one connection at most.
func Open(url string) (*Slots, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open replication slots' database: %w", err)
	}
	db.SetMaxOpenConns(1)
	return &Slots{db: db}, nil
}

// Close closes the connection.
func (s *Slots) Close() error { return s.db.Close() }

// Slots returns every logical replication slot, by name.
func (s *Slots) Slots(ctx context.Context) ([]console.Slot, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT slot_name, coalesce(database, ''), active, coalesce(wal_status, ''),
			coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,
			coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
		FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`)
	if err != nil {
		return nil, fmt.Errorf("read replication slots: %w", err)
	}
	defer rows.Close()
	var out []console.Slot
	for rows.Next() {
		var sl console.Slot
		if err := rows.Scan(&sl.Name, &sl.Database, &sl.Active, &sl.WALStatus, &sl.RetainedBytes, &sl.LagBytes); err != nil {
			return nil, fmt.Errorf("read replication slots: %w", err)
		}
		out = append(out, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read replication slots: %w", err)
	}
	return out, nil
}
