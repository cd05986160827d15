package webhooksink_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/webhooksink"
)

func open(t *testing.T, path string) (*webhooksink.Store, webhooksink.Loaded) {
	t.Helper()
	return openMax(t, path, 0)
}

func openMax(t *testing.T, path string, maxKeys int) (*webhooksink.Store, webhooksink.Loaded) {
	t.Helper()
	s, loaded, err := webhooksink.Open(path, maxKeys)
	if err != nil {
		t.Fatalf("Open(%s) error = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, loaded
}

func mustRecord(t *testing.T, s *webhooksink.Store, key, body string) webhooksink.Entry {
	t.Helper()
	e, err := s.Record("/hooks", key, []byte(body))
	if err != nil {
		t.Fatalf("Record(%s) error = %v", key, err)
	}
	return e
}

// summary is "key×deliveries" of each entry, in order.
func summary(entries []webhooksink.Entry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = fmt.Sprintf("%s×%d", e.Key, e.Deliveries)
	}
	return strings.Join(parts, " ")
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct{ key, body, wantErr string }{
		{"e1:customer", `{"text":"hi"}`, ""},
		{"e1:alert", " \n{}", ""},
		{"", `{}`, "Idempotency-Key: the header is required"},
		{strings.Repeat("k", 256), `{}`, "Idempotency-Key: at most 255"},
		{"k\x01", `{}`, "Idempotency-Key: printable ASCII"},
		{"ké", `{}`, "Idempotency-Key: printable ASCII"},
		{"k", `[1]`, "JSON object"},
		{"k", `{"a":`, "JSON object"},
		{"k", `hello`, "JSON object"},
		{"k", ``, "JSON object"},
	} {
		err := webhooksink.Check(tc.key, []byte(tc.body))
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (fault.Code(err) != fault.Invalid || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Check(%q, %q) = %v, want %q", tc.key, tc.body, err, tc.wantErr)
		}
	}
}

// TestStore: one entry per key with its deliveries and first body, filtered by the body's
// orderId, the last `limit` of them; and all of it again after a reopen.
func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "received.jsonl")
	s, loaded := open(t, path)
	if loaded != (webhooksink.Loaded{}) {
		t.Fatalf("a new file loaded %+v", loaded)
	}
	mustRecord(t, s, "e1:customer", `{"orderId":"o1","text":"first"}`)
	mustRecord(t, s, "e1:alert", `{"orderId":"o1"}`)
	mustRecord(t, s, "e2:customer", `{"orderId":"o2"}`)
	if e := mustRecord(t, s, "e1:customer", `{"orderId":"o1","text":"second"}`); e.Deliveries != 2 || string(e.Body) != `{"orderId":"o1","text":"first"}` {
		t.Errorf("a repeat = %+v, want deliveries 2 and the first body", e)
	}
	mustRecord(t, s, "x", `{"orderId":7}`)
	if _, err := s.Record("/hooks", "", []byte(`{}`)); fault.Code(err) != fault.Invalid {
		t.Errorf("Record without key = %v, want invalid", err)
	}
	check := func(s *webhooksink.Store) {
		t.Helper()
		for _, tc := range []struct {
			orderID string
			limit   int
			want    string
		}{
			{"o1", 10, "e1:customer×2 e1:alert×1"},
			{"o2", 10, "e2:customer×1"},
			{"nope", 10, ""},
			{"", 10, "e1:customer×2 e1:alert×1 e2:customer×1 x×1"},
			{"", 2, "e2:customer×1 x×1"},
		} {
			if got := summary(s.List(tc.orderID, tc.limit)); got != tc.want {
				t.Errorf("List(%q, %d) = %q, want %q", tc.orderID, tc.limit, got, tc.want)
			}
		}
	}
	check(s)
	s.Close()
	s, loaded = open(t, path)
	if loaded != (webhooksink.Loaded{Records: 5, Keys: 4}) {
		t.Errorf("reopen loaded %+v, want 5 records of 4 keys", loaded)
	}
	check(s)
}

// TestOpenTornTail: a sink killed while appending leaves a torn last line, which Open cuts off;
// a broken line before the last is not the sink's doing, and Open refuses the file.
func TestOpenTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "received.jsonl")
	s, _ := open(t, path)
	mustRecord(t, s, "k1", `{"orderId":"o1"}`)
	s.Close()
	whole, _ := os.ReadFile(path)
	for _, torn := range []string{`{"at":"2026-01-01T00:00:00Z","key":"k2","bo`, "{\"garbage\n"} {
		if err := os.WriteFile(path, append(whole, torn...), 0o600); err != nil {
			t.Fatal(err)
		}
		s, loaded := open(t, path)
		if loaded.Records != 1 || loaded.Torn != int64(len(torn)) {
			t.Errorf("Open after a torn %q loaded %+v", torn, loaded)
		}
		mustRecord(t, s, "k3", `{"orderId":"o1"}`)
		s.Close()
		if _, loaded = open(t, path); loaded.Records != 2 || loaded.Torn != 0 {
			t.Errorf("a record after the cut: reopen loaded %+v, want 2 records", loaded)
		}
		if err := os.WriteFile(path, whole, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, append([]byte("not json\n"), whole...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := webhooksink.Open(path, 0); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Open of a file broken in the middle = %v, want an error naming line 1", err)
	}
}

// TestStoreConcurrent: POSTs recorded at once (their fsyncs grouped) are all counted, and all
// there after a reopen.
func TestStoreConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "received.jsonl")
	s, _ := open(t, path)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() { mustRecord(t, s, fmt.Sprintf("k%d", i%20), `{"orderId":"o1"}`) })
	}
	wg.Wait()
	s.Close()
	s, loaded := open(t, path)
	if got := s.List("o1", 100); loaded.Records != 200 || len(got) != 20 || slices.ContainsFunc(got, func(e webhooksink.Entry) bool { return e.Deliveries != 10 }) {
		t.Errorf("after 200 concurrent records of 20 keys: loaded %+v, %s", loaded, summary(got))
	}
}

// TestStoreMaxKeys: the store keeps at most maxKeys keys, forgetting the oldest first and
// counting them; the data file is compacted to one line per kept key once it holds more than
// twice maxKeys lines, and a reopen finds the same entries with their deliveries.
func TestStoreMaxKeys(t *testing.T) {
	tests := []struct {
		name      string
		posts     []string // keys, in order
		want      string
		evicted   uint64
		fileLines int
	}{
		{"under the cap", []string{"a", "b", "a"}, "a×2 b×1", 0, 3},
		{"the oldest goes first", []string{"a", "b", "c", "d"}, "b×1 c×1 d×1", 1, 4},
		{"a repeat does not evict", []string{"a", "b", "c", "a", "a"}, "a×3 b×1 c×1", 0, 5},
		{"a forgotten key starts afresh", []string{"a", "b", "c", "d", "a"}, "c×1 d×1 a×1", 2, 5},
		{"compaction past twice the cap", []string{"a", "a", "a", "a", "a", "a", "b"}, "a×6 b×1", 0, 2},
		{"compaction keeps what is kept", []string{"a", "b", "c", "d", "e", "f", "g"}, "e×1 f×1 g×1", 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "received.jsonl")
			s, _ := openMax(t, path, 3)
			for _, k := range tt.posts {
				mustRecord(t, s, k, `{"orderId":"o1"}`)
			}
			if got := summary(s.List("", 100)); got != tt.want {
				t.Errorf("List = %q, want %q", got, tt.want)
			}
			if st := s.Stats(); st.Evicted != tt.evicted || st.Keys != strings.Count(tt.want, "×") {
				t.Errorf("Stats = %+v, want %d evicted", st, tt.evicted)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(raw), "\n"); n != tt.fileLines {
				t.Errorf("the data file has %d lines, want %d", n, tt.fileLines)
			}
			s.Close()
			s, _ = openMax(t, path, 3)
			if got := summary(s.List("", 100)); got != tt.want {
				t.Errorf("after a reopen: List = %q, want %q", got, tt.want)
			}
			mustRecord(t, s, "z", `{"orderId":"o1"}`) // the compacted file takes appends
			s.Close()
			s, _ = openMax(t, path, 10)
			if got := summary(s.List("", 100)); !strings.HasSuffix(got, "z×1") {
				t.Errorf("after an append to the compacted file: List = %q", got)
			}
		})
	}
}

// TestOpenCompactsAndCaps: a file written under a larger cap is cut to the new cap at Open, and
// compacted when it holds more than twice as many lines.
func TestOpenCompactsAndCaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "received.jsonl")
	s, _ := openMax(t, path, 100)
	for i := range 10 {
		mustRecord(t, s, fmt.Sprintf("k%d", i), `{"orderId":"o1"}`)
	}
	s.Close()
	s, loaded := openMax(t, path, 2)
	if loaded.Records != 10 || loaded.Keys != 2 {
		t.Errorf("Open loaded %+v, want 10 records, 2 keys kept", loaded)
	}
	if got := summary(s.List("", 100)); got != "k8×1 k9×1" {
		t.Errorf("List = %q", got)
	}
	if raw, _ := os.ReadFile(path); strings.Count(string(raw), "\n") != 2 {
		t.Errorf("the data file was not compacted: %d lines", strings.Count(string(raw), "\n"))
	}
}
