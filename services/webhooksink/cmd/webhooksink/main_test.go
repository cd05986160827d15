package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/webhooksink"
)

// TestMain lets a test run the command itself: the test binary, started with
// WEBHOOKSINK_AS_MAIN=1, is the sink.
func TestMain(m *testing.M) {
	if os.Getenv("WEBHOOKSINK_AS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

func TestLoad(t *testing.T) {
	servicetest.ClearEnv(t, "WEBHOOKSINK_")
	t.Setenv("STACK_DIR", "")
	os.Unsetenv("STACK_DIR")
	if cfg, err := load(); err != nil || cfg != (config{Addr: "127.0.0.1:8088", DataFile: ".stack/webhooksink/received.jsonl", FailStatus: 503, LogLevel: "info", level: zerolog.InfoLevel}) {
		t.Errorf("load() = %+v, %v", cfg, err)
	}
	t.Setenv("STACK_DIR", "/tmp/stack-b")
	if cfg, _ := load(); cfg.DataFile != "/tmp/stack-b/webhooksink/received.jsonl" {
		t.Errorf("with STACK_DIR: DataFile = %q", cfg.DataFile)
	}
	t.Setenv("WEBHOOKSINK_DATA_FILE", "/data/x.jsonl")
	if cfg, _ := load(); cfg.DataFile != "/data/x.jsonl" {
		t.Errorf("with WEBHOOKSINK_DATA_FILE: DataFile = %q", cfg.DataFile)
	}
	t.Setenv("WEBHOOKSINK_LOG_LEVEL", "loud")
	if _, err := load(); err == nil {
		t.Error("load() with WEBHOOKSINK_LOG_LEVEL=loud = nil error")
	}
}

// TestSurvivesSIGKILL: every POST the sink answered 200 is there after a SIGKILL and a start.
func TestSurvivesSIGKILL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "received.jsonl")
	base, sink := startSink(t, file)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			status, body := servicetest.Call(t, http.MethodPost, base+"/hooks", fmt.Sprintf(`{"orderId":"o1","n":%d}`, i),
				map[string]string{"Idempotency-Key": fmt.Sprintf("e%d:customer", i%10)})
			if status != http.StatusOK {
				t.Errorf("POST %d = %d %s", i, status, body)
			}
		})
	}
	wg.Wait()
	if err := sink.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sink.Wait()
	base, _ = startSink(t, file)
	_, body := servicetest.Call(t, http.MethodGet, base+"/received?orderId=o1", "", nil)
	var got []webhooksink.Entry
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != 10 {
		t.Fatalf("after SIGKILL: GET /received = %s (%v), want 10 keys", body, err)
	}
	for _, e := range got {
		if e.Deliveries != 2 {
			t.Errorf("after SIGKILL: %s has %d deliveries, want 2", e.Key, e.Deliveries)
		}
	}
}

// startSink starts the command on file and a free port and returns its base URL, once it
// serves, and its process (killed when the test ends).
func startSink(t *testing.T, file string) (string, *exec.Cmd) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "WEBHOOKSINK_AS_MAIN=1", "WEBHOOKSINK_ADDR="+addr, "WEBHOOKSINK_DATA_FILE="+file, "WEBHOOKSINK_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually.Holds(t, 10*time.Second, func() string {
		res, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err.Error()
		}
		res.Body.Close()
		return ""
	})
	return "http://" + addr, cmd
}
