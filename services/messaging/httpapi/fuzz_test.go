package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/httpapi"
)

// FuzzDecodeJSON: any body decodes or fails with a client error (never a panic, never a 5xx).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a","count":1,"tags":["x"]}`, `{"name":"a"} {}`, `{"evil":1}`, `{"count":"1"}`, ``, `{`, `[]`, `null`, `{"count":1e400}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v struct {
			Name  string   `json:"name"`
			Count int      `json:"count"`
			Tags  []string `json:"tags"`
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		err := httpapi.DecodeJSON(w, r, &v)
		if err == nil {
			return
		}
		if c := fault.Code(err); c != fault.Invalid && c != fault.TooLarge {
			t.Fatalf("body %q: error %v has code %q, want a client error", body, err, c)
		}
		if fault.Message(err) == "" {
			t.Fatalf("body %q: error without a message", body)
		}
	})
}
