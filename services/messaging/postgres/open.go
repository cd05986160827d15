package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	// Registers the "postgres" driver.
	_ "github.com/lib/pq"
)

// Open opens a pool to the database at url with at most maxOpen connections (half of
// them kept idle) and waits up to wait for it to answer: in a container stack the
// service may start before Postgres does. The pool sends each statement in one round trip
// (OneRoundTrip).
func Open(ctx context.Context, dsn string, maxOpen int, wait time.Duration) (*sql.DB, error) {
	db, err := sql.Open("postgres", OneRoundTrip(dsn))
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

// OneRoundTrip returns dsn (a postgres:// URL or key=value pairs) with lib/pq's
// binary_parameters on, unless dsn sets it. Without it, every statement with parameters costs
// two round trips to the server (an unnamed prepare, then bind and execute); with it, one
// (parse, bind and execute in a single message), which is most of what a saga step spends on
// its statements. The one difference it makes to callers: a []byte parameter is sent in binary
// format, which is the text itself for text and bytea columns (no column of ours takes a []byte
// as json or jsonb).
func OneRoundTrip(dsn string) string {
	if strings.Contains(dsn, "binary_parameters") {
		return dsn
	}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn + " binary_parameters=yes")
}
