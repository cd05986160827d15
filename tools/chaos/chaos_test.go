package chaos

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestBesideAddr(t *testing.T) {
	tests := []struct {
		url, want string
		wantErr   bool
	}{
		{url: "http://127.0.0.1:8080", want: "127.0.0.1:8180"},
		{url: "http://127.0.0.1:18081/", want: "127.0.0.1:18181"},
		{url: "http://localhost", wantErr: true},
	}
	for _, tt := range tests {
		got, err := besideAddr(tt.url, 100)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("besideAddr(%q) = %q, %v; want %q, error %v", tt.url, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestNextTargetRounds(t *testing.T) {
	tests := []struct {
		name    string
		members *clusterMembers
		want    []string
	}{
		{"single node", nil, Components},
		{"cluster", &clusterMembers{}, ClusterKinds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{rng: rand.New(rand.NewPCG(7, 11)), members: tt.members}
			for round := range 3 {
				var got []string
				for range tt.want {
					got = append(got, r.nextTarget())
				}
				if round == 0 && got[0] != "postgres" {
					t.Errorf("first round starts with %s, want postgres", got[0])
				}
				slices.Sort(got)
				if want := slices.Sorted(slices.Values(tt.want)); !slices.Equal(got, want) {
					t.Errorf("round %d killed %v, want each of %v once", round, got, want)
				}
			}
		})
	}
}

func TestPlot(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)
	o := &Outcome{Started: t0}
	for i := range 400 {
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		o.Timeline = append(o.Timeline, Point{At: at, Throughput: float64(10 + i%30),
			P50: time.Duration(100+i%50) * time.Millisecond, P99: time.Duration(1+i%30) * time.Second})
		if i%3 == 0 {
			o.Kills = append(o.Kills, Kill{Cycle: i / 3, Component: Components[i%len(Components)], At: at})
		}
	}
	o.WAL = WALResult{Ran: true, StoppedAt: t0.Add(1800 * time.Second), RestartedAt: t0.Add(1840 * time.Second)}
	path := filepath.Join(t.TempDir(), "timeline.png")
	if dir := os.Getenv("CHAOS_PLOT_DIR"); dir != "" { // to look at it
		path = filepath.Join(dir, "timeline.png")
	}
	if err := Plot(o, path); err != nil {
		t.Fatalf("Plot: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 10_000 {
		t.Fatalf("timeline.png: %v, %v", st, err)
	}
}
