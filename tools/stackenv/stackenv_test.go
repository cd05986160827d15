package stackenv

import (
	"fmt"
	"strings"
	"testing"

	"outboxsaga.dev/stack"
)

func TestDefaultsFollowThePortOffset(t *testing.T) {
	order, _ := stack.Lookup("order")
	tests := []struct {
		name, offset, orderURL string
		wantOrder, wantConnect string
	}{
		{"offset 0", "", "", fmt.Sprintf("http://127.0.0.1:%d", order.Port), fmt.Sprintf("http://127.0.0.1:%d", stack.ConnectPort)},
		{"offset 3000", "3000", "", fmt.Sprintf("http://127.0.0.1:%d", order.Port+3000), fmt.Sprintf("http://127.0.0.1:%d", stack.ConnectPort+3000)},
		{"URL variable wins", "3000", "http://example.test:1", "http://example.test:1", fmt.Sprintf("http://127.0.0.1:%d", stack.ConnectPort+3000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("STACK_PORT_OFFSET", tt.offset)
			t.Setenv(order.URLVar, tt.orderURL)
			t.Setenv("CONNECT_URL", "")
			t.Setenv("KAFKA_BROKERS", "")
			t.Setenv("PG_ADMIN_URL", "")
			e := Load()
			if e.OrderURL != tt.wantOrder {
				t.Errorf("OrderURL = %q, want %q", e.OrderURL, tt.wantOrder)
			}
			if e.ConnectURL != tt.wantConnect {
				t.Errorf("ConnectURL = %q, want %q", e.ConnectURL, tt.wantConnect)
			}
			off := 0
			fmt.Sscan(tt.offset, &off)
			if want := fmt.Sprintf("127.0.0.1:%d", stack.KafkaPort+off); len(e.Brokers) != 1 || e.Brokers[0] != want {
				t.Errorf("Brokers = %v, want [%s]", e.Brokers, want)
			}
			if want := fmt.Sprintf("@127.0.0.1:%d/postgres", stack.PostgresPort+off); !strings.Contains(e.PGAdminURL, want) {
				t.Errorf("PGAdminURL = %q, want it at %s", e.PGAdminURL, want)
			}
		})
	}
}
