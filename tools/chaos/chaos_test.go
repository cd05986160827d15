package chaos

import (
	"math/rand/v2"
	"slices"
	"testing"
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
	r := &Runner{rng: rand.New(rand.NewPCG(7, 11))}
	for round := range 3 {
		var got []string
		for range Components {
			got = append(got, r.nextTarget())
		}
		if round == 0 && got[0] != "postgres" {
			t.Errorf("first round starts with %s, want postgres", got[0])
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(Components))
		if !slices.Equal(got, want) {
			t.Errorf("round %d killed %v, want each of %v once", round, got, want)
		}
	}
}
