// Package pgtest gives tests a fresh Postgres database of their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	msgpg "outboxsaga.dev/messaging/postgres"
)

// DefaultAdminURL is used when PG_ADMIN_URL is unset: the local stack's superuser (make up),
// without a password. The stack's superuser password is random per stack; make test (through
// scripts/lib.sh) exports PG_ADMIN_URL with it.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// MustOpenTestDB is MustOpenTestDBURL without the URL.
func MustOpenTestDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, _ := MustOpenTestDBURL(tb)
	return db
}

// MustOpenTestDBURL creates a database with a random name through the admin connection at
// PG_ADMIN_URL (a postgres:// URL, default DefaultAdminURL), returns a connection pool to it and
// its URL (for code that opens connections of its own, e.g. a LISTEN), and drops it when the test
// ends. If Postgres does not answer the test fails, unless
// SKIP_INTEGRATION=1, in which case it is skipped.
func MustOpenTestDBURL(tb testing.TB) (*sql.DB, string) {
	tb.Helper()
	if os.Getenv("SKIP_INTEGRATION") == "1" {
		tb.Skip("SKIP_INTEGRATION=1: skipping a test that needs Postgres")
	}
	adminURL := os.Getenv("PG_ADMIN_URL")
	if adminURL == "" {
		adminURL = DefaultAdminURL
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		tb.Fatalf("PG_ADMIN_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		tb.Fatalf("open %s: %v", u.Redacted(), err)
	}
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		tb.Fatalf("Postgres at %s does not answer (%v): run `make up` (or set SKIP_INTEGRATION=1)", u.Redacted(), err)
	}

	var suffix [6]byte
	rand.Read(suffix[:])
	name := "test_" + hex.EncodeToString(suffix[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		tb.Fatalf("create database %s: %v", name, err)
	}
	u.Path = "/" + name
	db, err := sql.Open("postgres", msgpg.OneRoundTrip(u.String())) // as the services open it
	if err != nil {
		tb.Fatalf("open %s: %v", name, err)
	}
	tb.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	return db, u.String()
}

// Count runs query, which must return one integer (a count), and fails tb if it cannot.
func Count(tb testing.TB, db *sql.DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}
