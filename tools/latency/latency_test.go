package latency

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{name: "empty", sorted: nil, p: 50, want: 0},
		{name: "one value", sorted: []time.Duration{7}, p: 99, want: 7},
		{name: "median of 100", sorted: hundred, p: 50, want: 50 * time.Millisecond},
		{name: "p95 of 100", sorted: hundred, p: 95, want: 95 * time.Millisecond},
		{name: "p99 of 100", sorted: hundred, p: 99, want: 99 * time.Millisecond},
		{name: "p100 is the max", sorted: hundred, p: 100, want: 100 * time.Millisecond},
		{name: "median of 4 is the 2nd", sorted: []time.Duration{1, 2, 3, 4}, p: 50, want: 2},
		{name: "tiny p is the min", sorted: []time.Duration{1, 2, 3, 4}, p: 0.1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{name: "empty", in: nil, want: Summary{}},
		{
			name: "unsorted input",
			in:   []time.Duration{30, 10, 20, 40},
			want: Summary{N: 4, P50: 20, P95: 40, P99: 40, Max: 40, Mean: 25},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.in...)
			if got := Summarize(in); got != tt.want {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("Summarize modified its input")
				}
			}
		})
	}
}
