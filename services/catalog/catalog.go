// Package catalog is the catalog service's domain: two read models kept from the event log, off
// the saga's path (seed 001's side effects after the commit). A product says whether its SKU is
// sold out (StockDepleted / StockReplenished from inventory-events) and how many units of it
// completed orders took; the daily ranking orders a day's SKUs by the units of the orders that
// COMPLETED that day (OrderCompleted from order-events, the day taken from its occurredAt in the
// ranking's zone). Canceled orders never count; a completed order counts once.
//
// The functions here decide and never persist; package postgres stores, package app runs the
// use cases.
package catalog

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"outboxsaga.dev/messaging/fault"
)

// DefaultRankingTZ is the zone whose calendar days the ranking counts in when RANKING_TZ is not
// set: the seed's shop's.
const DefaultRankingTZ = "Asia/Seoul"

// DayLayout is the format of a day (the date parameter, a ranking's day).
const DayLayout = "2006-01-02"

// Limits of GET /rankings/daily's limit.
const (
	MinLimit     = 1
	MaxLimit     = 1000
	DefaultLimit = 10
)

// Product is what the catalog knows of one SKU.
type Product struct {
	SKU     string `json:"sku"`
	SoldOut bool   `json:"soldOut"`
	// SoldOutAt is when the inventory sold it out (StockDepleted's occurredAt); nil unless SoldOut.
	SoldOutAt *time.Time `json:"soldOutAt"`
	// UnitsSold is the sum of its quantities over the COMPLETED orders.
	UnitsSold int64 `json:"unitsSold"`
}

// Rank is one line of a day's ranking.
type Rank struct {
	Rank   int    `json:"rank"`
	SKU    string `json:"sku"`
	Units  int64  `json:"units"`
	Orders int64  `json:"orders"`
}

// Sale is one SKU's part of a completed order: the units (summed over the order's lines of that
// SKU).
type Sale struct {
	SKU   string
	Units int64
}

// Item is an order line as OrderCompleted carries it.
type Item struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// Sales sums a completed order's items per SKU, in SKU order: each SKU counts the order once in
// the ranking's orders, however many lines name it. Lines without a SKU or a positive quantity
// are refused (fault.Invalid: the schema lets none through).
func Sales(items []Item) ([]Sale, error) {
	if len(items) == 0 {
		return nil, fault.Errorf(fault.Invalid, "a completed order without items")
	}
	var out []Sale
	for _, it := range items {
		if it.SKU == "" || it.Qty < 1 {
			return nil, fault.Errorf(fault.Invalid, "item %q qty %d", it.SKU, it.Qty)
		}
		i, found := slices.BinarySearchFunc(out, it.SKU, func(s Sale, sku string) int { return strings.Compare(s.SKU, sku) })
		if found {
			out[i].Units += it.Qty
			continue
		}
		out = slices.Insert(out, i, Sale{SKU: it.SKU, Units: it.Qty})
	}
	return out, nil
}

// Day is the calendar day of t in loc, as DayLayout.
func Day(t time.Time, loc *time.Location) string { return t.In(loc).Format(DayLayout) }

// ParseDay checks a date parameter: YYYY-MM-DD, a real day. Its error is a fault.Invalid naming
// the parameter.
func ParseDay(s string) (string, error) {
	d, err := time.Parse(DayLayout, s)
	if err != nil || d.Format(DayLayout) != s {
		return "", fault.Errorf(fault.Invalid, "date must be a day as YYYY-MM-DD, not %q", excerpt(s))
	}
	return s, nil
}

// maxSKULen is the inventory's bound on a SKU (inventory.ValidateSKU).
const maxSKULen = 64

// ParseSKU checks a sku path parameter as the inventory checks a SKU it stocks: 1 to 64 letters,
// digits, '-', '_' and '.'. No other SKU was ever stocked, so the catalog never heard of one (and
// PostgreSQL could not even compare one holding NUL). Its error is a fault.Invalid naming the
// parameter.
func ParseSKU(s string) (string, error) {
	ok := s != "" && len(s) <= maxSKULen
	for _, c := range s {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	}
	if !ok {
		return "", fault.Errorf(fault.Invalid, "sku must be 1 to %d letters, digits, '-', '_' or '.', not %q", maxSKULen, excerpt(s))
	}
	return s, nil
}

// ParseLimit checks a limit parameter: an integer from MinLimit to MaxLimit (a request without
// one asks for DefaultLimit). Its error is a fault.Invalid naming the parameter.
func ParseLimit(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < MinLimit || n > MaxLimit {
		return 0, fault.Errorf(fault.Invalid, "limit must be an integer from %d to %d, not %q", MinLimit, MaxLimit, excerpt(s))
	}
	return n, nil
}

// RankOf numbers lines already in ranking order (units descending, SKU ascending): 1, 2, ….
// Ties get consecutive ranks, broken by SKU.
func RankOf(lines []Rank) []Rank {
	slices.SortFunc(lines, func(a, b Rank) int {
		if a.Units != b.Units {
			if a.Units > b.Units {
				return -1
			}
			return 1
		}
		return strings.Compare(a.SKU, b.SKU)
	})
	for i := range lines {
		lines[i].Rank = i + 1
	}
	return lines
}

// excerpt bounds a caller's value in a message.
func excerpt(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
