package load

import (
	"math/rand/v2"
	"testing"
)

func TestMixPick(t *testing.T) {
	tests := []struct {
		name string
		mix  Mix
		want map[Kind]bool // kinds that may appear
	}{
		{name: "only ok", mix: Mix{KindOK: 100}, want: map[Kind]bool{KindOK: true}},
		{name: "only declined", mix: Mix{KindDeclined: 5}, want: map[Kind]bool{KindDeclined: true}},
		{name: "default", mix: DefaultMix(), want: map[Kind]bool{KindOK: true, KindDeclined: true, KindFlaky: true, KindTimeout: true, KindScarce: true}},
		{name: "empty falls back to ok", mix: Mix{}, want: map[Kind]bool{KindOK: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for range 2000 {
				if k := tt.mix.pick(rng); !tt.want[k] {
					t.Fatalf("picked %s, want one of %v", k, tt.want)
				}
			}
		})
	}
}

func TestDrawUsesTheRunsSKUs(t *testing.T) {
	g := New(Config{Prefix: "P", Mix: DefaultMix(), Seed: 3})
	skus := g.SKUs()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		o := g.draw(rng)
		if _, ok := skus[o.SKU]; !ok {
			t.Fatalf("order on %s, not one of the run's SKUs %v", o.SKU, skus)
		}
		if o.Qty < 1 || o.Qty > maxQty || o.Amount != int64(o.Qty)*unitPriceKRW || o.IdempotencyKey == "" {
			t.Fatalf("bad order %+v", o)
		}
	}
}

func TestRecordMerge(t *testing.T) {
	a := &Record{Stock: map[string]int64{"A": 1}, Orders: []Order{{ID: "1"}}, Stats: Stats{Sent: 1, Accepted: 1}}
	b := &Record{Stock: map[string]int64{"B": 2}, Orders: []Order{{ID: "2"}}, Stats: Stats{Sent: 2, Errors: 1}}
	a.Merge(b)
	if len(a.Orders) != 2 || len(a.Stock) != 2 || a.Stats.Sent != 3 || a.Stats.Errors != 1 {
		t.Fatalf("merged %+v", a)
	}
}
