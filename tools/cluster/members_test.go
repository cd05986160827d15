package cluster

import (
	"os"
	"path/filepath"
	"testing"
)

func TestActiveController(t *testing.T) {
	nodes := []Node{{Name: "kafka", ID: 1}, {Name: "kafka-2", ID: 2}, {Name: "kafka-3", ID: 3}}
	tests := []struct {
		name   string
		states map[string]string // node → its quorum-state file
		want   string
	}{
		{"all agree", map[string]string{
			"kafka":   `{"leaderId":1,"leaderEpoch":1}`,
			"kafka-2": `{"leaderId":1,"leaderEpoch":1}`,
			"kafka-3": `{"leaderId":1,"leaderEpoch":1}`,
		}, "kafka"},
		{"a node that was down remembers an older leader", map[string]string{
			"kafka":   `{"leaderId":1,"leaderEpoch":3}`,
			"kafka-2": `{"leaderId":3,"leaderEpoch":4}`,
			"kafka-3": `{"leaderId":3,"leaderEpoch":4}`,
		}, "kafka-3"},
		{"an election under way names no leader yet", map[string]string{
			"kafka":   `{"leaderId":-1,"leaderEpoch":5}`,
			"kafka-2": `{"leaderId":2,"leaderEpoch":4}`,
		}, "kafka-2"},
		{"none", map[string]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for node, state := range tt.states {
				meta := filepath.Join(dir, node, "data", "__cluster_metadata-0")
				if err := os.MkdirAll(meta, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(meta, "quorum-state"), []byte(state), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ActiveController(dir, nodes)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ActiveController = %s, want an error", got.Name)
				}
				return
			}
			if err != nil || got.Name != tt.want {
				t.Fatalf("ActiveController = %q, %v; want %s", got.Name, err, tt.want)
			}
		})
	}
}
