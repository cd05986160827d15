package upcast_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/messaging/upcast"
	"outboxsaga.dev/schemas"
)

// TestEveryOlderVersionUpcastsToAValidLatest: for every event type and every version older than
// the upcaster's latest, generated events (ordinary and extreme) upcast to data that the latest
// version's schema accepts; and the upcaster's latest is the newest schema of every type.
func TestEveryOlderVersionUpcastsToAValidLatest(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	u := upcast.New()
	newest := make(map[string]int)
	for _, extreme := range []bool{false, true} {
		g, err := schemas.NewGenerator(7)
		if err != nil {
			t.Fatal(err)
		}
		g.Extreme = extreme
		for _, et := range g.EventTypes() {
			newest[et.Type] = max(newest[et.Type], et.Version)
			for range 50 {
				raw, err := g.Event(et.Type, et.Version)
				if err != nil {
					t.Fatal(err)
				}
				var env messaging.Envelope
				if err := json.Unmarshal(raw, &env); err != nil {
					t.Fatal(err)
				}
				data, version, err := u.Upcast(env.EventType, env.EventVersion, env.Data)
				if err != nil || version != u.Latest(et.Type) {
					t.Fatalf("Upcast(%s v%d) = v%d, %v; want v%d", et.Type, et.Version, version, err, u.Latest(et.Type))
				}
				env.Data, env.EventVersion = data, version
				env.IdempotencyKey = env.AggregateID + "#" + env.EventType + "#" + strconv.Itoa(version)
				up, err := json.Marshal(env)
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Validate(env.EventType, version, up); err != nil {
					t.Fatalf("%s v%d upcast to v%d breaks its schema: %v\n%s", et.Type, et.Version, version, err, up)
				}
			}
		}
	}
	for eventType, n := range newest {
		if u.Latest(eventType) != n {
			t.Errorf("upcaster's latest %s is v%d, the newest schema v%d", eventType, u.Latest(eventType), n)
		}
	}
}

// TestDecodeUpcasts: the consumer's Decode hands the router an OrderCreated v1 as a v2 (data
// as it came, the raw value untouched), a v2 as it is, and a version no schema knows is poison.
func TestDecodeUpcasts(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	g, err := schemas.NewGenerator(1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		version     int
		wantVersion int
		wantPoison  bool
	}{
		{"v1", 1, 2, false},
		{"v2", 2, 2, false},
		{"v3, which no schema knows", 3, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := g.Event("OrderCreated", min(tt.version, 2))
			if err != nil {
				t.Fatal(err)
			}
			if tt.version == 3 {
				raw = []byte(strings.Replace(string(raw), `"eventVersion":2`, `"eventVersion":3`, 1))
			}
			m := &messaging.Message{Record: messaging.Record{Topic: messaging.TopicOrder, Value: raw}}
			var seen *messaging.Message
			h := messaging.Chain(func(_ context.Context, m *messaging.Message) error { seen = m; return nil }, kafka.Decode(v))
			err = h(context.Background(), m)
			if tt.wantPoison {
				if !errors.Is(err, schemas.ErrUnknownEvent) || !messaging.IsPermanent(err) {
					t.Fatalf("error = %v, want a permanent unknown event", err)
				}
				return
			}
			if err != nil || seen == nil || seen.EventVersion != tt.wantVersion || string(seen.Value) != string(raw) {
				t.Fatalf("Decode: %v; handler saw %+v", err, seen)
			}
		})
	}
}
