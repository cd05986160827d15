package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/console"
	"outboxsaga.dev/console/httpapi"
)

// fakeServices stands for the services' HTTP APIs.
type fakeServices struct {
	mu       sync.Mutex
	order    console.Order
	events   []console.Event
	replayed []string
}

func (f *fakeServices) Sagas(_ context.Context, fl console.SagaFilter) (console.SagaPage, error) {
	s := console.Saga{OrderID: "11111111-2222-3333-4444-555555555555", Status: "PENDING", Waiting: "payment",
		CustomerID: "U1", Amount: 39000, Currency: "KRW", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", CreatedAt: time.Now().Add(-time.Minute)}
	if fl.Status == "COMPLETED" {
		return console.SagaPage{}, nil
	}
	return console.SagaPage{Sagas: []console.Saga{s}, Next: "next-cursor"}, nil
}

func (f *fakeServices) Order(context.Context, string) (console.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.order, nil
}

func (f *fakeServices) Events(context.Context, string) ([]console.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]console.Event(nil), f.events...), nil
}

func (f *fakeServices) Delivery(context.Context, string) (console.Delivery, error) {
	return console.Delivery{}, nil
}

func (f *fakeServices) Notifications(context.Context, string) ([]console.Notification, error) {
	return nil, nil
}

func (f *fakeServices) Watch(ctx context.Context, _ string, _ func()) error {
	<-ctx.Done()
	return nil
}

func (f *fakeServices) DeadLetters(context.Context, int) ([]console.DeadLetter, map[string]error) {
	return []console.DeadLetter{
		{ID: 7, Service: "inventory", Topic: "order-events", Key: "poison-1", Error: "decode envelope: not JSON", Attempts: 1, CreatedAt: time.Now()},
		{ID: 9, Service: "payment", Topic: "order-events", Key: "other", Error: "unknown type", Attempts: 5, CreatedAt: time.Now()},
	}, nil
}

func (f *fakeServices) Replay(_ context.Context, ref string) console.ReplayOutcome {
	f.mu.Lock()
	f.replayed = append(f.replayed, ref)
	f.mu.Unlock()
	return console.ReplayOutcome{Ref: ref, Detail: "replay of dead letter 7 failed again: not JSON"}
}

func (f *fakeServices) Services() []string { return []string{"order", "inventory", "payment"} }

type fakeConnect struct{ restarted []string }

func (c *fakeConnect) Connectors(context.Context) ([]console.Connector, error) { return nil, nil }
func (c *fakeConnect) Restart(_ context.Context, name string) error {
	c.restarted = append(c.restarted, name)
	return nil
}

type fixedHealth console.Health

func (h fixedHealth) Snapshot() console.Health { return console.Health(h) }

const token = "operator-token"

func newConsole(t *testing.T) (*httptest.Server, *fakeServices, *fakeConnect) {
	t.Helper()
	t0 := time.Now().Add(-2 * time.Second)
	svc := &fakeServices{
		order:  console.Order{OrderID: "11111111-2222-3333-4444-555555555555", Status: "PENDING", CustomerID: "U1", Amount: 39000, Currency: "KRW", CreatedAt: t0},
		events: []console.Event{{EventType: "OrderCreated", Source: "order-service", OccurredAt: t0, RecordedAt: t0}},
	}
	conn := &fakeConnect{}
	health := fixedHealth{At: time.Now(), Connectors: []console.Connector{{Name: "order-outbox", State: "PAUSED", Tasks: []console.Task{{ID: 0, State: "PAUSED"}}}}}
	h, err := httpapi.Handler(httpapi.Config{Services: svc, Connect: conn, Health: health, AdminToken: token,
		StuckAfter: 10 * time.Second, LiveInterval: 20 * time.Millisecond, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, svc, conn
}

func get(t *testing.T, c *http.Client, u string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestOperatorOnly(t *testing.T) {
	srv, _, _ := newConsole(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code, _ := get(t, noRedirect, srv.URL+"/sagas"); code != http.StatusSeeOther {
		t.Errorf("a page without a session: %d, want 303 to the login", code)
	}
	if code, _ := get(t, noRedirect, srv.URL+"/sagas", "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("a wrong bearer token: %d, want 401", code)
	}
	if code, _ := get(t, noRedirect, srv.URL+"/health/live"); code != http.StatusUnauthorized {
		t.Errorf("a live stream without a session: %d, want 401", code)
	}
	if code, body := get(t, noRedirect, srv.URL+"/sagas", "Authorization", "Bearer "+token); code != http.StatusOK || !strings.Contains(body, "Sagas") {
		t.Errorf("the bearer token: %d", code)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(srv.URL+"/login", url.Values{"token": {"nope"}, "next": {"/health"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token at the login: %d, want 401", resp.StatusCode)
	}
	resp, err = browser.PostForm(srv.URL+"/login", url.Values{"token": {token}, "next": {"https://evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/sagas" || !strings.Contains(string(body), "Stuck") {
		t.Errorf("after the login: at %s, want /sagas (never another site)", resp.Request.URL)
	}
	if code, _ := get(t, browser, srv.URL+"/dead-letters"); code != http.StatusOK {
		t.Errorf("the session: %d, want 200", code)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/health/connectors/order-outbox/restart", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a form from another site with the session: %d, want 403", resp.StatusCode)
	}
}

func TestPagesReadWithoutJavaScript(t *testing.T) {
	srv, svc, conn := newConsole(t)
	c := &http.Client{}
	auth := []string{"Authorization", "Bearer " + token}
	for path, wants := range map[string][]string{
		"/sagas?status=PENDING": {"Stuck: pending longer than 10s (1)", "payment", "39,000 KRW", `href="/sagas/11111111-2222-3333-4444-555555555555"`,
			"before=next-cursor", `<option selected>PENDING</option>`},
		"/sagas/11111111-2222-3333-4444-555555555555": {"PENDING", "Running for", "OrderCreated", "4bf92f3577b34da6a3ce929d0e0e4736", `data-live="/sagas/11111111-2222-3333-4444-555555555555/live"`},
		"/dead-letters?q=poison":                      {"poison-1", "inventory:7", "decode envelope: not JSON"},
		"/health":                                     {"Something is wrong", "connector order-outbox is PAUSED", "Resume"},
	} {
		code, body := get(t, c, srv.URL+path, auth...)
		if code != http.StatusOK {
			t.Errorf("%s: %d", path, code)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s loads something from elsewhere", path)
		}
	}
	if _, body := get(t, c, srv.URL+"/dead-letters?q=poison", auth...); strings.Contains(body, "payment:9") {
		t.Errorf("the filter q=poison keeps a dead letter without it")
	}

	form := url.Values{"dl": {"inventory:7"}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dead-letters/replay?q=poison", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(svc.replayed) != 1 || svc.replayed[0] != "inventory:7" || !strings.Contains(string(body), "failed again: not JSON") {
		t.Errorf("replay: %v, page shows outcome %v", svc.replayed, strings.Contains(string(body), "failed again"))
	}

	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/health/connectors/order-outbox/restart", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(conn.restarted) != 1 || conn.restarted[0] != "order-outbox" {
		t.Errorf("restart: %v", conn.restarted)
	}
	if code, body := get(t, c, srv.URL+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `console_actions_total{action="restart",outcome="ok"} 1`) ||
		!strings.Contains(body, `console_actions_total{action="replay",outcome="failed"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, _ := get(t, c, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

func TestSagaLiveSendsEachChange(t *testing.T) {
	srv, svc, _ := newConsole(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sagas/11111111-2222-3333-4444-555555555555/live", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	updates := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var b strings.Builder
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data: "):
				b.WriteString(strings.TrimPrefix(line, "data: ") + "\n")
			case line == "" && b.Len() > 0:
				updates <- b.String()
				b.Reset()
			}
		}
	}()
	first := <-updates
	if !strings.Contains(first, "PENDING") {
		t.Fatalf("first update lacks PENDING: %s", first)
	}
	svc.mu.Lock()
	svc.order.Status = "COMPLETED"
	svc.events = append(svc.events, console.Event{EventType: "OrderCompleted", Source: "order-service", OccurredAt: time.Now(), RecordedAt: time.Now()})
	svc.mu.Unlock()
	select {
	case next := <-updates:
		if !strings.Contains(next, "COMPLETED") || !strings.Contains(next, "OrderCompleted") || !strings.Contains(next, "Total time") {
			t.Fatalf("the update after the change: %s", next)
		}
	case <-ctx.Done():
		t.Fatal("no update after the saga changed")
	}
}

// pageOfSagas answers every list with a full page (50 sagas) and 20 stuck ones.
type pageOfSagas struct{ fakeServices }

func (p *pageOfSagas) Sagas(_ context.Context, f console.SagaFilter) (console.SagaPage, error) {
	n := 50
	if f.Status == "PENDING" {
		n = 20
	}
	d := "SHIPPED"
	var page console.SagaPage
	for i := range n {
		page.Sagas = append(page.Sagas, console.Saga{OrderID: "11111111-2222-3333-4444-55555555" + strings.Repeat("0", 4-len(fmt.Sprint(i))) + fmt.Sprint(i),
			Status: "COMPLETED", Delivery: &d, Waiting: "shipping", CustomerID: "U1", Amount: 39000, Currency: "KRW",
			CreatedAt: time.Now().Add(-time.Duration(i) * time.Minute), UpdatedAt: time.Now()})
	}
	page.Next = "cursor"
	return page, nil
}

// BenchmarkSagasPage measures the console's own share of the sagas page: two reads of the order
// service (instant here) and the rendering of 70 rows.
func BenchmarkSagasPage(b *testing.B) {
	h, err := httpapi.Handler(httpapi.Config{Services: &pageOfSagas{}, Connect: &fakeConnect{}, Health: fixedHealth{},
		AdminToken: token, StuckAfter: 10 * time.Second, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/sagas?status=COMPLETED", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
