package kafka

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWatchLag: the gauge follows the high-water mark between messages (a consumer stuck on one
// message shows its lag growing) and stays unset while the position or the mark is unknown.
func TestWatchLag(t *testing.T) {
	tests := []struct {
		name      string
		last, hwm int64
		want      float64
	}{
		{name: "caught up", last: 41, hwm: 42, want: 0},
		{name: "stuck while records arrive", last: 41, hwm: 142, want: 100},
		{name: "nothing taken yet, from offset 0", last: -1, hwm: 7, want: 7},
		{name: "position unknown (OffsetNewest)", last: -2, hwm: 7, want: -5},
		{name: "high-water mark not fetched", last: 3, hwm: 0, want: -5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag"})
			gauge.Set(-5) // "unset"
			var last atomic.Int64
			last.Store(tt.last)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			watchLag(ctx, gauge, func() int64 { return tt.hwm }, &last, time.Millisecond)
			if got := testutil.ToFloat64(gauge); got != tt.want {
				t.Errorf("lag = %v, want %v", got, tt.want)
			}
		})
	}
}
