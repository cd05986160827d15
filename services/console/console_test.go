package console_test

import (
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/console"
)

func TestTimelineHops(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	events := []console.Event{
		{EventType: "OrderCreated", Source: "order-service", OccurredAt: t0, RecordedAt: t0},
		{EventType: "StockReserved", Source: "inventory-events", OccurredAt: t0.Add(100 * time.Millisecond), RecordedAt: t0.Add(250 * time.Millisecond)},
		{EventType: "PaymentFailed", Source: "payment-events", OccurredAt: t0.Add(400 * time.Millisecond), RecordedAt: t0.Add(500 * time.Millisecond)},
		{EventType: "OrderCanceled", Source: "order-service", OccurredAt: t0.Add(520 * time.Millisecond), RecordedAt: t0.Add(520 * time.Millisecond)},
	}
	tl := console.NewTimeline(events)
	if !tl.Compensated || tl.Total != 520*time.Millisecond {
		t.Fatalf("compensated %v total %v, want true 520ms", tl.Compensated, tl.Total)
	}
	want := []struct {
		service         string
		step, delivered time.Duration
		compensation    bool
	}{
		{"order", 0, 0, false},
		{"inventory", 100 * time.Millisecond, 150 * time.Millisecond, false},
		{"payment", 300 * time.Millisecond, 100 * time.Millisecond, true},
		{"order", 120 * time.Millisecond, 0, true},
	}
	for i, w := range want {
		h := tl.Hops[i]
		if h.Service != w.service || h.Step != w.step || h.Delivered != w.delivered || h.Compensation != w.compensation {
			t.Errorf("hop %d (%s): %s step %v delivered %v compensation %v, want %+v", i, h.EventType, h.Service, h.Step, h.Delivered, h.Compensation, w)
		}
	}
	if running := console.NewTimeline(events[:2]); running.Total != 0 || running.Compensated {
		t.Errorf("a running saga: total %v compensated %v, want 0 false", running.Total, running.Compensated)
	}
}

func TestProblemsInWords(t *testing.T) {
	th := console.DefaultThresholds
	well := console.Health{
		Connectors: []console.Connector{{Name: "order-outbox", State: "RUNNING", Tasks: []console.Task{{ID: 0, State: "RUNNING"}}}},
		Slots:      []console.Slot{{Name: "order_outbox", Database: "order_db", Active: true, WALStatus: "reserved", RetainedBytes: 1 << 20}},
		Lags:       []console.PartitionLag{{Group: "order-service", Topic: "inventory-events", Records: 3, Behind: time.Second}},
	}
	if p := well.Problems(th); len(p) != 0 {
		t.Fatalf("a healthy pipeline has problems: %v", p)
	}
	sick := console.Health{
		Unreadable: []string{"cannot read Kafka Connect: refused"},
		Connectors: []console.Connector{
			{Name: "order-outbox", State: "PAUSED", Tasks: []console.Task{{ID: 0, State: "PAUSED"}}},
			{Name: "payment-outbox", State: "RUNNING", Tasks: []console.Task{{ID: 0, State: "FAILED", Trace: "org.apache.kafka.connect.errors.ConnectException: boom\n\tat x"}}},
		},
		Slots: []console.Slot{
			{Name: "order_outbox", Database: "order_db", Active: false, WALStatus: "reserved", RetainedBytes: 3 << 20},
			{Name: "payment_outbox", Database: "payment_db", Active: true, WALStatus: "lost"},
		},
		Lags: []console.PartitionLag{
			{Group: "inventory-service", Topic: "order-events", Partition: 2, Records: 5000, Behind: 90 * time.Second},
		},
	}
	var causes []string
	for _, p := range sick.Problems(th) {
		causes = append(causes, p.Cause)
	}
	all := strings.Join(causes, "\n")
	for _, want := range []string{
		"cannot read Kafka Connect: refused",
		"connector order-outbox is PAUSED: someone paused it",
		"task 0 of payment-outbox is FAILED: it failed with org.apache.kafka.connect.errors.ConnectException: boom",
		"replication slot order_outbox is not active: no connector reads order_db, and it holds 3.0 MiB of WAL",
		"replication slot payment_outbox lost WAL",
		"consumer group inventory-service is 5000 records (1m30s) behind on order-events/2",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "task 0 of order-outbox") {
		t.Errorf("a paused connector's paused task is said twice:\n%s", all)
	}
}

func TestForPeople(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 350 * time.Millisecond: "350ms", 10 * time.Second: "10s",
		4200 * time.Millisecond: "4.2s", 190 * time.Second: "3m10s", 125 * time.Minute: "2h05m", 72 * time.Hour: "3d"} {
		if got := console.Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := console.Sparkline([]int64{0, 5, 10}); got != "▁▄█" {
		t.Errorf("Sparkline = %q", got)
	}
	if got := console.Direction([]int64{9, 4, 1}); got != "falling" {
		t.Errorf("Direction = %q", got)
	}
	if got := console.Bytes(1536); got != "1.5 KiB" {
		t.Errorf("Bytes = %q", got)
	}
}
