package postgres

import "embed"

// Migrations are the service's own migrations (migrations/*.sql); the service runtime applies
// them after the shared messaging ones (messaging/postgres.MigrateService).
//
//go:embed migrations/*.sql
var Migrations embed.FS
