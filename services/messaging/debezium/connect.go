// Package debezium watches the CDC path: the Kafka Connect REST API that runs the Debezium
// connectors (connector and task states, waiting until they run, their configs, restarts) and,
// in Monitor, a service's replication slot. Each service runs a Monitor for its own connector
// (its /readyz and /metrics); the supervisor, the console, the pipeline tests and the chaos tool
// use the Client: it is the project's one client of Connect's REST API.
package debezium

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Client is a Kafka Connect REST client.
type Client struct {
	BaseURL string // Kafka Connect's REST API (the stack's: CONNECT_URL)
	// User and Password log in to the REST API (HTTP Basic: the worker's
	// BasicAuthSecurityRestExtension); no Authorization header when User is empty.
	User     string
	Password string
	HTTP     *http.Client
}

// NewClient returns a Client for the Connect worker at baseURL that logs in as user with
// password (CONNECT_REST_USER and CONNECT_REST_PASSWORD of the stack).
func NewClient(baseURL, user, password string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), User: user, Password: password,
		HTTP: &http.Client{Timeout: 5 * time.Second}}
}

// NewRequest returns a request for path (e.g. /connectors) of the REST API, with the client's
// login.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	return req, nil
}

// State is the state of one connector or task as Connect reports it.
type State struct {
	State string `json:"state"`
	Trace string `json:"trace,omitempty"`
	// WorkerID is the worker that runs it (its advertised REST host:port): with several workers
	// in one group, where the connector or task is.
	WorkerID string `json:"worker_id,omitempty"`
}

// TaskStatus is the state of one task of a connector.
type TaskStatus struct {
	ID int `json:"id"`
	State
}

// Status is GET /connectors/{name}/status.
type Status struct {
	Name      string       `json:"name"`
	Connector State        `json:"connector"`
	Tasks     []TaskStatus `json:"tasks"`
}

// Running reports whether the connector and at least one task, and every task, run.
func (s Status) Running() bool {
	if s.Connector.State != "RUNNING" || len(s.Tasks) == 0 {
		return false
	}
	for _, t := range s.Tasks {
		if t.State.State != "RUNNING" {
			return false
		}
	}
	return true
}

// TaskState is the state of the connector's tasks: RUNNING when every one runs, otherwise the
// state of the first that does not; "NO TASK" when the connector has none yet.
func (s Status) TaskState() string {
	if len(s.Tasks) == 0 {
		return "NO TASK"
	}
	for _, t := range s.Tasks {
		if t.State.State != "RUNNING" {
			return t.State.State
		}
	}
	return "RUNNING"
}

// FirstTrace returns the first line of the connector's or a task's error trace, or "".
func (s Status) FirstTrace() string {
	traces := []string{s.Connector.Trace}
	for _, t := range s.Tasks {
		traces = append(traces, t.Trace)
	}
	for _, tr := range traces {
		if tr == "" {
			continue
		}
		// The cause is more telling than the wrapper ("Tolerance exceeded in error handler").
		lines := strings.Split(tr, "\n")
		for _, l := range lines {
			if strings.HasPrefix(l, "Caused by: ") {
				return strings.TrimPrefix(l, "Caused by: ")
			}
		}
		return lines[0]
	}
	return ""
}

var causeLine = regexp.MustCompile(`^[A-Za-z].*(Exception|Error)|^Caused by`)

// Causes returns up to n lines of the connector's and its tasks' error traces that say what
// failed: exception lines and their causes, not the stack frames.
func (s Status) Causes(n int) []string {
	traces := []string{s.Connector.Trace}
	for _, t := range s.Tasks {
		traces = append(traces, t.Trace)
	}
	var out []string
	for _, tr := range traces {
		for _, l := range strings.Split(tr, "\n") {
			if len(out) < n && causeLine.MatchString(l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// ErrNotFound is returned (wrapped) for a connector that is not registered.
var ErrNotFound = errors.New("not found")

// ErrUnauthorized is returned (wrapped) when Connect refuses the client's login.
var ErrUnauthorized = errors.New("login refused")

// Connectors lists the registered connector names.
func (c *Client) Connectors(ctx context.Context) ([]string, error) {
	var names []string
	if err := c.get(ctx, "/connectors", &names); err != nil {
		return nil, err
	}
	return names, nil
}

// Status returns the state of connector name and its tasks.
func (c *Client) Status(ctx context.Context, name string) (Status, error) {
	var s Status
	err := c.get(ctx, connectorPath(name)+"/status", &s)
	return s, err
}

// WaitRunning polls until every named connector and its tasks are RUNNING, or ctx
// ends; the error then names the last state seen.
func (c *Client) WaitRunning(ctx context.Context, names ...string) error {
	for _, name := range names {
		var last string
		for {
			s, err := c.Status(ctx, name)
			if err == nil && s.Running() {
				break
			}
			last = fmt.Sprintf("%+v (err %v)", s, err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("connector %s not running: last seen %s: %w", name, last, ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// Statuses returns the state of every registered connector, by name (one call:
// GET /connectors?expand=status).
func (c *Client) Statuses(ctx context.Context) (map[string]Status, error) {
	var all map[string]struct {
		Status Status `json:"status"`
	}
	if err := c.do(ctx, http.MethodGet, "/connectors?expand=status", nil, &all); err != nil {
		return nil, err
	}
	out := make(map[string]Status, len(all))
	for name, s := range all {
		out[name] = s.Status
	}
	return out, nil
}

// Config returns the stored config of connector name (its "name" key included, as Connect
// answers it).
func (c *Client) Config(ctx context.Context, name string) (map[string]string, error) {
	var cfg map[string]string
	err := c.get(ctx, connectorPath(name)+"/config", &cfg)
	return cfg, err
}

// PutConfig creates connector name with cfg, or updates it in place (PUT
// /connectors/{name}/config; Connect restarts a connector whose config it updates).
func (c *Client) PutConfig(ctx context.Context, name string, cfg map[string]string) error {
	return c.do(ctx, http.MethodPut, connectorPath(name)+"/config", cfg, nil)
}

// RestartFailed restarts connector name's failed parts: the connector if it failed and every
// failed task.
func (c *Client) RestartFailed(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, connectorPath(name)+"/restart?includeTasks=true&onlyFailed=true", nil, nil)
}

// Resume resumes a paused or stopped connector.
func (c *Client) Resume(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPut, connectorPath(name)+"/resume", nil, nil)
}

func connectorPath(name string) string { return "/connectors/" + url.PathEscape(name) }

func (c *Client) get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, nil, v)
}

// do calls the REST API: body, when not nil, is sent as JSON; a 2xx answer is decoded into v
// when v is not nil. Connect answers 409 during a rebalance and 500 while its herder cannot
// reach Kafka: the error says so, and callers that wait retry.
func (c *Client) do(ctx context.Context, method, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := c.NewRequest(ctx, method, path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w", method, path, ErrNotFound)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s %s: status %s: Kafka Connect refuses the login %q (CONNECT_REST_USER, CONNECT_REST_PASSWORD): %w", method, path, resp.Status, c.User, ErrUnauthorized)
	case resp.StatusCode/100 != 2:
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("%s %s: status %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}
