package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/httpapi"
)

func TestPprofNeedsTheAdminToken(t *testing.T) {
	r := httpapi.NewRouter(zerolog.Nop())
	httpapi.MountPprof(r, "s3cret", zerolog.Nop())
	srv := httptest.NewServer(r)
	defer srv.Close()

	get := func(path, auth string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline"} {
		for _, auth := range []string{"", "Bearer wrong", "s3cret"} {
			if code, _ := get(path, auth); code != http.StatusUnauthorized {
				t.Errorf("GET %s with Authorization %q: %d, want 401", path, auth, code)
			}
		}
	}
	const ok = "Bearer s3cret"
	if code, body := get("/debug/pprof/", ok); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("index: %d %.200q, want 200 listing the profiles", code, body)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1", ok); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	// A CPU profile is a gzipped protobuf.
	if code, body := get("/debug/pprof/profile?seconds=1", ok); code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("CPU profile: %d %.50q, want 200 and gzip", code, body)
	}
	if code, _ := get("/debug/pprof/no-such-profile", ok); code != http.StatusNotFound {
		t.Errorf("unknown profile: %d, want 404", code)
	}
}
