package schemas_test

import (
	"strings"
	"testing"

	"outboxsaga.dev/schemas"
)

// TestAsyncAPIMessagesAreSchemas: every message of asyncapi.yaml is an event type and version
// with a schema here, and each topic carries only its own aggregate's events (dead letters
// aside, and quarantine, which takes any).
func TestAsyncAPIMessagesAreSchemas(t *testing.T) {
	a, err := schemas.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(a.Topics()); got != 6 {
		t.Errorf("asyncapi.yaml describes %d topics, want 6: %v", got, a.Topics())
	}
	for _, topic := range a.Topics() {
		for _, f := range a.SchemaFiles(topic) {
			typ, ver, ok := strings.Cut(strings.TrimSuffix(f, ".json"), ".v")
			if !ok || !v.Known(typ, atoi(t, ver)) {
				t.Errorf("%s: message %s has no schema of that type and version", topic, f)
			}
		}
	}
}

func TestAsyncAPICheck(t *testing.T) {
	a, err := schemas.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, topic, value string
		wantErr            bool
	}{
		{name: "another topic's event", topic: "payment-events", value: `{"eventType":"OrderCompleted","eventVersion":1}`, wantErr: true},
		{name: "unknown version", topic: "order-events", value: `{"eventType":"OrderCompleted","eventVersion":99}`, wantErr: true},
		{name: "not JSON", topic: "order-events", value: `nope`, wantErr: true},
		{name: "its own event, but invalid", topic: "order-events", value: `{"eventType":"OrderCompleted","eventVersion":1}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Check(v, tt.topic, []byte(tt.value)); (err != nil) != tt.wantErr {
				t.Errorf("Check = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("version %q is not a number", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
