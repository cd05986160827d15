package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lib/pq"
)

// RebuildSchema is the schema the rebuild folds the topics into: fresh tables shaped as the live
// ones (and an inbox of their own), so that the service's own code writes them, on a connection
// whose search_path is this schema (RebuildURL).
const RebuildSchema = "catalog_rebuild"

// rebuiltTables are the tables a rebuild recreates: the read models and the inbox.
var rebuiltTables = []string{"products", "counted_orders", "daily_sales", "processed_events"}

// RebuildURL returns url with its connections' search_path set to RebuildSchema: the repository's
// unqualified tables are then the rebuild's.
func RebuildURL(url string) string {
	sep := "?"
	for _, c := range url {
		if c == '?' {
			sep = "&"
		}
	}
	return url + sep + "search_path=" + RebuildSchema
}

// PrepareRebuild (re)creates RebuildSchema with empty copies of the live tables, as db's role
// (the database's owner).
func PrepareRebuild(ctx context.Context, db *sql.DB) error {
	stmts := []string{`DROP SCHEMA IF EXISTS ` + RebuildSchema + ` CASCADE`, `CREATE SCHEMA ` + RebuildSchema}
	for _, t := range rebuiltTables {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE %s.%s (LIKE public.%s INCLUDING ALL)`, RebuildSchema, t, t))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("prepare the rebuild: %w", err)
		}
	}
	return nil
}

// DropRebuild drops RebuildSchema.
func DropRebuild(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+RebuildSchema+` CASCADE`); err != nil {
		return fmt.Errorf("drop the rebuild: %w", err)
	}
	return nil
}

// RebuildReport is what comparing the rebuilt read models with the live ones found.
type RebuildReport struct {
	// Products is the number of rebuilt products.
	Products int
	// Differences names each differing row: "product <sku>" or "day <day> <sku>".
	Differences []string
}

// CompareRebuild compares the rebuilt products and daily sales with the live ones, row by row
// (sold out, since when, units; a day's units and orders per SKU).
func CompareRebuild(ctx context.Context, db *sql.DB) (RebuildReport, error) {
	var rep RebuildReport
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+RebuildSchema+`.products`).Scan(&rep.Products); err != nil {
		return rep, fmt.Errorf("compare the rebuild: %w", err)
	}
	var diffs []string
	err := db.QueryRowContext(ctx, `
		SELECT coalesce(array_agg(d ORDER BY d), '{}') FROM (
			SELECT 'product ' || coalesce(l.sku, r.sku) AS d
			FROM public.products l FULL JOIN `+RebuildSchema+`.products r ON l.sku = r.sku
			WHERE l.sku IS NULL OR r.sku IS NULL OR l.sold_out <> r.sold_out
				OR l.sold_out_at IS DISTINCT FROM r.sold_out_at OR l.units_sold <> r.units_sold
			UNION ALL
			SELECT 'day ' || coalesce(l.day, r.day)::text || ' ' || coalesce(l.sku, r.sku)
			FROM public.daily_sales l FULL JOIN `+RebuildSchema+`.daily_sales r ON l.day = r.day AND l.sku = r.sku
			WHERE l.sku IS NULL OR r.sku IS NULL OR l.units <> r.units OR l.orders <> r.orders
		) x`).Scan(pq.Array(&diffs))
	if err != nil {
		return rep, fmt.Errorf("compare the rebuild: %w", err)
	}
	rep.Differences = diffs
	return rep, nil
}
