package stack

import (
	"slices"
	"testing"
)

func TestParseMembers(t *testing.T) {
	nodes, err := ParseKafkaNodes("kafka:1:13092:13093 kafka-2:2:13095:13097 kafka-3:3:13096:13098")
	if err != nil {
		t.Fatal(err)
	}
	want := []KafkaNode{{1, 13092, 13093}, {2, 13095, 13097}, {3, 13096, 13098}}
	if !slices.Equal(nodes, want) {
		t.Errorf("ParseKafkaNodes = %v, want %v", nodes, want)
	}
	workers, err := ParseConnectWorkers("connect:12083 connect-2:12087")
	if err != nil {
		t.Fatal(err)
	}
	if w := []ConnectWorker{{1, 12083}, {2, 12087}}; !slices.Equal(workers, w) {
		t.Errorf("ParseConnectWorkers = %v, want %v", workers, w)
	}
	for _, bad := range []string{"kafka:1:9092", "kafka-2:1:9092:9093", "kafka:x:9092:9093"} {
		if _, err := ParseKafkaNodes(bad); err == nil {
			t.Errorf("ParseKafkaNodes(%q) took it", bad)
		}
	}
	for _, bad := range []string{"connect", "worker:8083", "connect-1:8083", "connect:x"} {
		if _, err := ParseConnectWorkers(bad); err == nil {
			t.Errorf("ParseConnectWorkers(%q) took it", bad)
		}
	}
}
