// Package postgres stores orders and their saga timelines in the order service's database
// (order_db). Writes run in the caller's transaction, so that a state change, its timeline rows
// and its outbox rows (messaging/postgres.Outbox) commit together; reads use the pool.
package postgres

import "embed"

// Migrations are the service's own migrations (migrations/*.sql); the service runtime applies
// them after the shared messaging ones (messaging/postgres.MigrateService).
//
//go:embed migrations/*.sql
var Migrations embed.FS
