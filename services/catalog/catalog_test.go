package catalog_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/catalog"
	"outboxsaga.dev/messaging/fault"
)

func TestSales(t *testing.T) {
	got, err := catalog.Sales([]catalog.Item{{SKU: "B", Qty: 1}, {SKU: "A", Qty: 2}, {SKU: "B", Qty: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []catalog.Sale{{SKU: "A", Units: 2}, {SKU: "B", Units: 4}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sales = %v, want %v", got, want)
	}
	for _, bad := range [][]catalog.Item{nil, {{SKU: "", Qty: 1}}, {{SKU: "A", Qty: 0}}} {
		if _, err := catalog.Sales(bad); fault.Code(err) != fault.Invalid {
			t.Errorf("Sales(%v) error = %v, want invalid", bad, err)
		}
	}
}

func TestDayInTheRankingZone(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	// 15:30 UTC on the 1st is 00:30 on the 2nd in Seoul.
	at := time.Date(2026, 12, 1, 15, 30, 0, 0, time.UTC)
	if got := catalog.Day(at, seoul); got != "2026-12-02" {
		t.Errorf("Day in Seoul = %s, want 2026-12-02", got)
	}
	if got := catalog.Day(at, time.UTC); got != "2026-12-01" {
		t.Errorf("Day in UTC = %s, want 2026-12-01", got)
	}
}

func TestParseParameters(t *testing.T) {
	for _, s := range []string{"2026-12-07", "2024-02-29"} {
		if _, err := catalog.ParseDay(s); err != nil {
			t.Errorf("ParseDay(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "2026-12-7", "2026-13-01", "2025-02-29", "yesterday", "2026-12-07T00:00:00Z"} {
		if _, err := catalog.ParseDay(s); fault.Code(err) != fault.Invalid {
			t.Errorf("ParseDay(%q) = %v, want invalid", s, err)
		}
	}
	for _, s := range []string{"A100", "T-1F2E3D4C", "a.b_c-9", strings.Repeat("S", 64)} {
		if got, err := catalog.ParseSKU(s); err != nil || got != s {
			t.Errorf("ParseSKU(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "\x00", "A\x00B", "A/B", "A%2FB", "A B", "é", strings.Repeat("S", 65)} {
		if _, err := catalog.ParseSKU(s); fault.Code(err) != fault.Invalid || !strings.Contains(err.Error(), "sku") {
			t.Errorf("ParseSKU(%q) = %v, want invalid naming sku", s, err)
		}
	}
	for s, want := range map[string]int{"10": 10, "1": 1, "1000": 1000} {
		if got, err := catalog.ParseLimit(s); err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "1001", "-1", "ten", "1.5"} {
		if _, err := catalog.ParseLimit(s); fault.Code(err) != fault.Invalid {
			t.Errorf("ParseLimit(%q) = %v, want invalid", s, err)
		}
	}
}

func TestRankOfBreaksTiesBySKU(t *testing.T) {
	got := catalog.RankOf([]catalog.Rank{{SKU: "C", Units: 2, Orders: 1}, {SKU: "A", Units: 5, Orders: 2}, {SKU: "B", Units: 2, Orders: 2}})
	want := []catalog.Rank{{Rank: 1, SKU: "A", Units: 5, Orders: 2}, {Rank: 2, SKU: "B", Units: 2, Orders: 2}, {Rank: 3, SKU: "C", Units: 2, Orders: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RankOf = %v, want %v", got, want)
	}
}
