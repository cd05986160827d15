// Package postgres holds the SQL the supervisor runs on the stack's PostgreSQL cluster as its
// superuser, through psql (the password in psql's environment, on no command line).
package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Admin is the cluster's superuser over TCP.
type Admin struct {
	Host     string
	Port     int
	User     string
	Password string
}

// query runs sql in db and returns psql's unaligned output (fields separated by a space).
func (a Admin) query(ctx context.Context, db, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", a.Host, "-p", strconv.Itoa(a.Port),
		"-U", a.User, "-d", db, "-tA", "-F", " ", "-c", sql)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PGPASSWORD=" + a.Password, "LANG=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("psql %s: %w: %s", db, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// LogReplicationCommands makes sure the server logs replication commands (a cluster made before
// infra/postgres/postgresql.conf said so gets it now).
func (a Admin) LogReplicationCommands(ctx context.Context) error {
	v, err := a.query(ctx, "postgres", "show log_replication_commands")
	if err != nil {
		return err
	}
	if strings.TrimSpace(v) == "on" {
		return nil
	}
	if _, err := a.query(ctx, "postgres", "ALTER SYSTEM SET log_replication_commands = on"); err != nil {
		return err
	}
	_, err = a.query(ctx, "postgres", "SELECT pg_reload_conf()")
	return err
}

// HasPublication reports whether db has the publication pub.
func (a Admin) HasPublication(ctx context.Context, db, pub string) (bool, error) {
	out, err := a.query(ctx, db, "select 1 from pg_publication where pubname = '"+strings.ReplaceAll(pub, "'", "''")+"'")
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == "1", nil
}

// Slot is a replication slot and how far behind it is.
type Slot struct {
	Name, Database, Type, Plugin string
	Active                       bool
	// Lag: current WAL − confirmed flush; Retained: current WAL − restart ("-" when unknown).
	Lag, Retained, WALStatus string
}

// Slots lists the cluster's replication slots by name.
func (a Admin) Slots(ctx context.Context) ([]Slot, error) {
	out, err := a.query(ctx, "postgres", `
    select slot_name, coalesce(database, '-'), active,
           replace(coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), '-'), ' ', ''),
           replace(coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), '-'), ' ', ''),
           coalesce(wal_status, '-'), slot_type, coalesce(plugin, '-')
      from pg_replication_slots order by slot_name`)
	if err != nil {
		return nil, err
	}
	var slots []Slot
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		slots = append(slots, Slot{Name: f[0], Database: f[1], Active: f[2] == "t", Lag: f[3], Retained: f[4], WALStatus: f[5], Type: f[6], Plugin: f[7]})
	}
	return slots, nil
}
