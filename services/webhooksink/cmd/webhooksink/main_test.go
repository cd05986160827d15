package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/webhooksink"
	"outboxsaga.dev/webhooksink/sinktest"
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
	for _, name := range []string{"STACK_DIR", "ALLOWED_HOSTS", "MAX_CONNECTIONS"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	if _, err := load(); err == nil || !strings.Contains(err.Error(), "WEBHOOKSINK_SECRET") {
		t.Errorf("load() without a secret = %v, want an error naming WEBHOOKSINK_SECRET", err)
	}
	t.Setenv("WEBHOOKSINK_SECRET", sinktest.Secret)
	if _, err := load(); err == nil || !strings.Contains(err.Error(), "WEBHOOKSINK_READ_TOKEN") {
		t.Errorf("load() without a read token = %v, want an error naming WEBHOOKSINK_READ_TOKEN", err)
	}
	t.Setenv("WEBHOOKSINK_READ_TOKEN", "r")
	want := config{Addr: "127.0.0.1:8088", DataFile: ".stack/webhooksink/received.jsonl", FailStatus: 503, LogLevel: "info",
		Secret: sinktest.Secret, ReadToken: "r", MaxKeys: 100000, level: zerolog.InfoLevel}
	if cfg, err := load(); err != nil || !reflect.DeepEqual(cfg, want) {
		t.Errorf("load() = %+v, %v, want %+v", cfg, err, want)
	}
	t.Setenv("ALLOWED_HOSTS", "webhooksink,notification")
	t.Setenv("MAX_CONNECTIONS", "10")
	t.Setenv("WEBHOOKSINK_MAX_KEYS", "5")
	if cfg, err := load(); err != nil || !slices.Equal(cfg.AllowedHosts, []string{"webhooksink", "notification"}) || cfg.MaxConnections != 10 || cfg.MaxKeys != 5 {
		t.Errorf("with ALLOWED_HOSTS, MAX_CONNECTIONS, WEBHOOKSINK_MAX_KEYS: %+v, %v", cfg, err)
	}
	t.Setenv("WEBHOOKSINK_SECRET", "whsec_not base64")
	if _, err := load(); err == nil {
		t.Error("load() with a malformed secret = nil error")
	}
	t.Setenv("WEBHOOKSINK_SECRET", sinktest.Secret)
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
			body := fmt.Sprintf(`{"orderId":"o1","n":%d}`, i)
			status, answer := servicetest.Call(t, http.MethodPost, base+"/hooks", body,
				sinktest.SignedHeaders(t, fmt.Sprintf("e%d:customer", i%10), []byte(body)))
			if status != http.StatusOK {
				t.Errorf("POST %d = %d %s", i, status, answer)
			}
		})
	}
	wg.Wait()
	if err := sink.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sink.Wait()
	base, _ = startSink(t, file)
	_, body := servicetest.Call(t, http.MethodGet, base+"/received?orderId=o1", "", sinktest.ReadHeaders())
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
	cmd.Env = append(os.Environ(), "WEBHOOKSINK_AS_MAIN=1", "WEBHOOKSINK_ADDR="+addr, "WEBHOOKSINK_DATA_FILE="+file, "WEBHOOKSINK_LOG_LEVEL=warn",
		"WEBHOOKSINK_SECRET="+sinktest.Secret, "WEBHOOKSINK_READ_TOKEN="+sinktest.ReadToken)
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
