package invariant

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"outboxsaga.dev/tools/load"
)

// ProductView is the catalog's GET /products/{sku}.
type ProductView struct {
	SKU       string     `json:"sku"`
	SoldOut   bool       `json:"soldOut"`
	SoldOutAt *time.Time `json:"soldOutAt"`
	UnitsSold int64      `json:"unitsSold"`
}

// RankView is one line of the catalog's GET /rankings/daily.
type RankView struct {
	Rank   int    `json:"rank"`
	SKU    string `json:"sku"`
	Units  int64  `json:"units"`
	Orders int64  `json:"orders"`
}

// maxRanking is the longest ranking the catalog answers (its limit's maximum).
const maxRanking = 1000

// Product reads what the catalog knows of sku (found=false on 404: it never heard of it).
func (e Endpoints) Product(ctx context.Context, sku string) (ProductView, bool, error) {
	return getFound[ProductView](ctx, e.ServiceURL("catalog")+"/products/"+url.PathEscape(sku), "")
}

// Ranking reads the catalog's ranking of day (YYYY-MM-DD), at most maxRanking lines.
func (e Endpoints) Ranking(ctx context.Context, day string) ([]RankView, error) {
	var rs []RankView
	_, err := getRetry(ctx, fmt.Sprintf("%s/rankings/daily?date=%s&limit=%d", e.ServiceURL("catalog"), url.QueryEscape(day), maxRanking), "", &rs)
	return rs, err
}

// RankingZone is the zone the catalog counts its days in: CATALOG_RANKING_TZ, else RANKING_TZ,
// else Asia/Seoul (its default).
func RankingZone() (*time.Location, error) {
	name := "Asia/Seoul"
	for _, v := range []string{"CATALOG_RANKING_TZ", "RANKING_TZ"} {
		if z := os.Getenv(v); z != "" {
			name = z
			break
		}
	}
	return time.LoadLocation(name)
}

// checkCatalog: invariant 8, at quiescence. Per SKU of the run, the catalog's units sold equal
// the quantities of the COMPLETED orders, and it says sold out iff the inventory's available is
// 0. Per day of the run's completed orders (the day of the order's completion, its updatedAt, in
// the ranking's zone), the catalog's ranking restricted to the run's SKUs lists exactly the SKUs
// the orders give, with their units and orders, in the same order (units descending, SKU
// ascending). A stack without a catalog skips it.
func (c *Checker) checkCatalog(ctx context.Context, rec *load.Record, s *Snapshot, r *Result, add addFunc) error {
	if c.Endpoints.ServiceURL("catalog") == "" {
		return nil
	}
	zone, err := RankingZone()
	if err != nil {
		return fmt.Errorf("invariant 8: %w", err)
	}
	units := map[string]int64{}
	days := map[string]map[string]*RankView{}
	for _, o := range rec.Orders {
		v := s.Orders[o.ID]
		if v.Status != "COMPLETED" {
			continue
		}
		units[o.SKU] += int64(o.Qty)
		day := v.UpdatedAt.In(zone).Format("2006-01-02")
		if days[day] == nil {
			days[day] = map[string]*RankView{}
		}
		rv := days[day][o.SKU]
		if rv == nil {
			rv = &RankView{SKU: o.SKU}
			days[day][o.SKU] = rv
		}
		rv.Units += int64(o.Qty)
		rv.Orders++
	}
	for sku := range rec.Stock {
		r.Checked[8]++
		p, found, err := c.Endpoints.Product(ctx, sku)
		if err != nil {
			return fmt.Errorf("invariant 8: product %s: %w", sku, err)
		}
		if p.UnitsSold != units[sku] {
			add(8, sku, "catalog units sold %d (found %v), completed orders hold %d", p.UnitsSold, found, units[sku])
		}
		if avail := s.Stock[sku].Available; p.SoldOut != (avail == 0) {
			add(8, sku, "catalog sold out %v, inventory available %d", p.SoldOut, avail)
		}
	}
	for day, want := range days {
		r.Checked[8]++
		got, err := c.Endpoints.Ranking(ctx, day)
		if err != nil {
			return fmt.Errorf("invariant 8: ranking of %s: %w", day, err)
		}
		if len(got) == maxRanking {
			c.logf("invariant 8: the ranking of %s has %d lines or more; only those were compared", day, maxRanking)
		}
		var ours []RankView
		for _, rv := range got {
			if _, ok := rec.Stock[rv.SKU]; ok {
				ours = append(ours, RankView{SKU: rv.SKU, Units: rv.Units, Orders: rv.Orders})
			}
		}
		expect := make([]RankView, 0, len(want))
		for _, rv := range want {
			expect = append(expect, *rv)
		}
		slices.SortFunc(expect, func(a, b RankView) int {
			if a.Units != b.Units {
				return int(b.Units - a.Units)
			}
			return strings.Compare(a.SKU, b.SKU)
		})
		if !slices.Equal(ours, expect) && len(got) < maxRanking {
			add(8, day, "catalog ranking of the run's SKUs %v, the orders give %v", ours, expect)
		}
	}
	return nil
}
