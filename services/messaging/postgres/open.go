package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	// Registers the "postgres" driver.
	_ "github.com/lib/pq"
)

// Open opens a pool to the database at url with at most maxOpen connections (half of
// them kept idle) and waits up to wait for it to answer: in a container stack the
// service may start before Postgres does.
func Open(ctx context.Context, url string, maxOpen int, wait time.Duration) (*sql.DB, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(max(maxOpen/2, 1))
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, fmt.Errorf("database does not answer within %s: %w", wait, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
