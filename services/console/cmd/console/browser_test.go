package main

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/chromedp"
	"github.com/go-chi/chi/v5"
	_ "github.com/lib/pq"
	"github.com/rs/zerolog"

	"outboxsaga.dev/console/consoletest"
	orderhttp "outboxsaga.dev/order/httpapi"
	orderpg "outboxsaga.dev/order/postgres"
	"outboxsaga.dev/stack"
)

// TestConsoleInBrowser drives the console in headless Chromium (Debian's chromium, installed by
// scripts/install.sh; chromedp downloads nothing) against the running dev stack: it logs in,
// places an order and watches its saga page turn COMPLETED without a reload, pauses a connector
// and sees the health page turn red with the cause, and poisons a record and replays it from
// the dead-letters page. It takes a screenshot of each page: into docs/console/ with
// CONSOLE_SCREENSHOTS=1 (the committed ones come from there), else into a temporary directory.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() || os.Getenv("SKIP_INTEGRATION") == "1" {
		t.Skip("integration test: needs the running stack")
	}
	browser := chromium(t)
	env := consoletest.Load()
	if env.AdminToken == "" {
		t.Skip("no stack: no operator token (.stack/admin-token); run make up")
	}
	if !reachable(env.URL("order") + "/healthz") {
		t.Skipf("no stack: the order service does not answer at %s", env.URL("order"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	base := startConsole(t, ctx, env)
	api := &stackAPI{t: t, env: env}
	sku := fmt.Sprintf("CONSOLE-%d", time.Now().UnixNano()%1_000_000)
	api.operator(http.MethodPut, env.URL("order")+"/prices/"+sku, `{"unitPrice":1000,"currency":"KRW"}`)
	api.operator(http.MethodPut, env.URL("inventory")+"/stock/"+sku, `{"available":1000}`)

	alloc, stopAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000))...)
	defer stopAlloc()
	tab, closeTab := chromedp.NewContext(alloc)
	defer closeTab()

	// The login asks for the operator token once; the session cookie does the rest.
	must(t, "log in", chromedp.Do(tab,
		chromedp.Navigate(base+"/sagas"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), env.AdminToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("all")),
	))

	// Hold the saga: with the order service's connector paused, OrderCreated waits in the WAL.
	connector := stack.Service("order").Connector()
	api.connect(http.MethodPut, "/connectors/"+connector+"/pause")
	t.Cleanup(func() { api.connect(http.MethodPut, "/connectors/"+connector+"/resume") })
	id := api.placeOrder(sku)

	must(t, "open the saga", chromedp.Do(tab,
		chromedp.Navigate(base+"/sagas/"+id),
		chromedp.WaitVisible(chromedp.ID("saga-status")),
	))
	status, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("saga-status")))
	must(t, "read the saga's status", err)
	_, err = chromedp.Run(tab, chromedp.Evaluate[string](`window.sameDocument = "yes"`))
	must(t, "mark the page", err)
	if !strings.Contains(status, "PENDING") {
		t.Fatalf("saga page shows %q with the connector paused, want PENDING", status)
	}

	// The health page, in a second tab, turns red with the cause in words.
	health, closeHealth := chromedp.NewContext(tab)
	defer closeHealth()
	must(t, "see the paused connector", chromedp.Do(health,
		chromedp.Navigate(base+"/health"),
		waitText(`section.problems`, "connector "+connector+" is PAUSED"),
		// the replication slots (read as a role without grants would) and the consumer lag too
		waitText(`#health`, stack.Service("order").ReplicationSlot()),
		waitText(`#health`, stack.Service("inventory").ConsumerGroup()),
	))
	problems, err := chromedp.Run(health, chromedp.Text(chromedp.CSS("section.problems")))
	must(t, "read the problems", err)
	t.Logf("health page: %s", problems)
	screenshot(t, health, "health.png")

	// Resumed, the saga runs, and its page turns COMPLETED by itself.
	api.connect(http.MethodPut, "/connectors/"+connector+"/resume")
	must(t, "see the saga complete", chromedp.Do(tab,
		waitText(`#saga-status`, "COMPLETED"),
		waitText(`table.timeline`, "OrderCompleted"),
		waitGone(`#saga`, "No delivery (yet)"),
	))
	same, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.sameDocument || "reloaded"`))
	must(t, "read the mark", err)
	if same != "yes" {
		t.Fatalf("the saga page was reloaded (%q): it must update live", same)
	}
	screenshot(t, tab, "saga.png")
	must(t, "see the connector run again", chromedp.Do(health, waitGone(`#health`, "connector "+connector+" is PAUSED")))

	// The sagas list shows the order, filterable by the URL.
	must(t, "list the sagas", chromedp.Do(tab,
		chromedp.Navigate(base+"/sagas?status=COMPLETED"),
		waitText(`#main`, id[:8]),
	))
	screenshotViewport(t, tab, "sagas.png")

	// A poisoned record becomes a dead letter of each consumer; replay them from the page.
	key := fmt.Sprintf("console-poison-%d", time.Now().UnixNano())
	api.poison("shipping-events", key)
	var refs []string
	deadline := time.Now().Add(60 * time.Second)
	for len(refs) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the poisoned record %s did not become dead letters on the page: %v", key, refs)
		}
		must(t, "list the dead letters", chromedp.Do(tab,
			chromedp.Navigate(base+"/dead-letters?state=open&q="+key),
			chromedp.WaitVisible(chromedp.CSS("table.deadletters")),
		))
		refs, err = chromedp.Run(tab, chromedp.Evaluate[[]string](fmt.Sprintf(`Array.from(document.querySelectorAll("table.deadletters tbody tr"))
			.filter(tr => tr.textContent.includes(%q)).map(tr => tr.querySelector('input[name="dl"]').value)`, key)))
		must(t, "find the poison's dead letters", err)
		if len(refs) < 2 {
			time.Sleep(time.Second)
		}
	}
	var steps []chromedp.Action[chromedp.Void]
	for _, ref := range refs {
		steps = append(steps, chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[type=checkbox][value=%q]`, ref))))
	}
	steps = append(steps, chromedp.Click(chromedp.ID("replay-selected")), chromedp.WaitVisible(chromedp.CSS("ul.outcomes")))
	must(t, "replay the selection", chromedp.Do(tab, steps...))
	outcomes, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("ul.outcomes")))
	must(t, "read the outcomes", err)
	for _, ref := range refs {
		if !strings.Contains(outcomes, ref) {
			t.Errorf("replay outcomes %q do not name %s", outcomes, ref)
		}
	}
	// Not JSON stays not JSON: each replay fails again, and the page says so.
	if !strings.Contains(outcomes, "failed again") {
		t.Errorf("replay outcomes %q: want each replay of the poison to fail again, in words", outcomes)
	}
	screenshot(t, tab, "dead-letters.png")
}

// chromium returns Debian's chromium (CHROMIUM overrides), or skips.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: scripts/install.sh installs Debian's chromium package")
	return ""
}

func reachable(u string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startConsole runs the console in-process on a free port with the stack's credentials and
// returns its URL. When the stack's order service predates GET /orders (the stack runs a build
// from before it), the console reaches the order service through a proxy that serves the list
// from the same code (order/httpapi, order/postgres) on the same database.
func startConsole(t *testing.T, ctx context.Context, env consoletest.Stack) string {
	t.Helper()
	cfg := config{
		AdminToken: env.AdminToken, ConnectURL: env.ConnectURL, ConnectUser: env.ConnectUser, ConnectPass: env.ConnectPassword,
		Brokers: env.Brokers, KafkaUser: consoletest.Viewer, KafkaPass: env.KafkaPassword(consoletest.Viewer),
		// Any login role may read pg_replication_slots; the test has the superuser's URL only.
		DatabaseURL: cmp.Or(os.Getenv("CONSOLE_DATABASE_URL"), env.AdminURL("postgres")),
		StuckAfter:  10 * time.Second, LagRecords: 1000, LagBehind: 30 * time.Second, SampleInterval: time.Second,
		ServiceURLs: map[string]string{},
	}
	for _, p := range stack.SagaServices() {
		cfg.ServiceURLs[p.Name] = env.URL(p.Name)
	}
	if !hasOrderList(env) {
		t.Logf("the stack's order service has no GET /orders yet: serving it from this test (order/httpapi.ListRoutes)")
		cfg.ServiceURLs["order"] = orderListProxy(t, env)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, ln, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("console: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func hasOrderList(env consoletest.Stack) bool {
	req, _ := http.NewRequest(http.MethodGet, env.URL("order")+"/orders?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+env.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// orderListProxy serves GET /orders from order_db with the order service's own list code, and
// proxies everything else to the stack's order service.
func orderListProxy(t *testing.T, env consoletest.Stack) string {
	t.Helper()
	db, err := sql.Open("postgres", env.AdminURL(stack.Service("order").Database()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	target, err := url.Parse(env.URL("order"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // the status stream
	r := chi.NewRouter()
	orderhttp.ListRoutes(r, orderhttp.ListConfig{Orders: orderpg.NewOrderList(db), AdminToken: env.AdminToken, Log: zerolog.Nop()})
	r.NotFound(proxy.ServeHTTP)
	r.MethodNotAllowed(proxy.ServeHTTP)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

// stackAPI is what the test does to the stack itself (not through the console).
type stackAPI struct {
	t   *testing.T
	env consoletest.Stack
}

func (a *stackAPI) do(req *http.Request) []byte {
	a.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		a.t.Fatalf("%s %s: %d %.300s", req.Method, req.URL, resp.StatusCode, raw)
	}
	return raw
}

// operator calls an operator endpoint of a service.
func (a *stackAPI) operator(method, u, body string) {
	a.t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.env.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	a.do(req)
}

// connect calls Kafka Connect's REST API.
func (a *stackAPI) connect(method, path string) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.env.ConnectURL+path, nil)
	req.SetBasicAuth(a.env.ConnectUser, a.env.ConnectPassword)
	a.do(req)
}

// placeOrder places an order of one sku as a customer and returns its id.
func (a *stackAPI) placeOrder(sku string) string {
	a.t.Helper()
	bearer, err := a.env.CustomerBearer("console-test")
	if err != nil {
		a.t.Fatal(err)
	}
	body := fmt.Sprintf(`{"currency":"KRW","paymentToken":"tok_ok","items":[{"sku":%q,"qty":1}]}`, sku)
	req, _ := http.NewRequest(http.MethodPost, a.env.URL("order")+"/orders", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", bearer)
	req.Header.Set("Content-Type", "application/json")
	var placed struct {
		OrderID string `json:"orderId"`
	}
	if err := json.Unmarshal(a.do(req), &placed); err != nil || placed.OrderID == "" {
		a.t.Fatalf("place order: %v", err)
	}
	return placed.OrderID
}

// poison writes a record that is not JSON to topic, as the test-only injector principal.
func (a *stackAPI) poison(topic, key string) {
	a.t.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(a.env.Brokers, a.env.Kafka(consoletest.Injector, cfg))
	if err != nil {
		a.t.Fatalf("producer as injector: %v", err)
	}
	defer p.Close()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key),
		Value: sarama.StringEncoder("this is not JSON")}); err != nil {
		a.t.Fatalf("poison %s: %v", topic, err)
	}
}

// waitText waits until the element sel's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return waitFor(sel, want, true)
}

// waitGone waits until the element sel's text no longer contains text.
func waitGone(sel, text string) chromedp.Action[chromedp.Void] {
	return waitFor(sel, text, false)
}

func waitFor(sel, text string, present bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		expr := fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.includes(%q)`, sel, text)
		for {
			got, err := chromedp.Evaluate[bool](expr)(ctx, tg)
			if err != nil {
				return err
			}
			if got == present {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %q present=%v: %w", sel, text, !present, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot writes the tab's full page to docs/console/<name>.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	must(t, "screenshot "+name, err)
	writeScreenshot(t, name, png)
}

// screenshotViewport writes what the window shows (a long list's first screen).
func screenshotViewport(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	must(t, "screenshot "+name, err)
	writeScreenshot(t, name, png)
}

func writeScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if os.Getenv("CONSOLE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "..", "..", "docs", "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
