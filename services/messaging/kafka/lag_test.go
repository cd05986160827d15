package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWatchLag: the gauges follow the high-water mark between messages (a consumer stuck on one
// message shows its lag growing, in records and in seconds) and stay unset while the position or
// the mark is unknown.
func TestWatchLag(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		offset, hwm int64
		appended    time.Time
		wantRecords float64
		wantSeconds float64
	}{
		{name: "caught up", offset: 41, hwm: 42, appended: now.Add(-time.Hour), wantRecords: 0, wantSeconds: 0},
		{name: "stuck while records arrive", offset: 41, hwm: 142, appended: now.Add(-90 * time.Second), wantRecords: 100, wantSeconds: 90},
		{name: "nothing taken yet, from offset 0", offset: -1, hwm: 7, wantRecords: 7, wantSeconds: 0},
		{name: "position unknown (OffsetNewest)", offset: -2, hwm: 7, wantRecords: -5, wantSeconds: -5},
		{name: "high-water mark not fetched", offset: 3, hwm: 0, wantRecords: -5, wantSeconds: -5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := lagGauges{records: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag"}), seconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag_seconds"})}
			g.records.Set(-5) // "unset"
			g.seconds.Set(-5)
			var pos position
			pos.offset.Store(tt.offset)
			if !tt.appended.IsZero() {
				pos.at.Store(tt.appended.UnixNano())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			watchLag(ctx, g, func() int64 { return tt.hwm }, &pos, time.Millisecond, func() time.Time { return now })
			if got := testutil.ToFloat64(g.records); got != tt.wantRecords {
				t.Errorf("lag = %v records, want %v", got, tt.wantRecords)
			}
			if got := testutil.ToFloat64(g.seconds); got != tt.wantSeconds {
				t.Errorf("lag = %v s, want %v", got, tt.wantSeconds)
			}
		})
	}
}
